// CnnUserException: the one exception type that means "the user gave us something wrong" (a damaged
// file, a missing dataset, an unwritable directory, a bad flag). The CLI catches it, prints only its
// Message on one line and exits with code 2, so the message must carry everything the user needs:
// which file, what was expected, what was found. Everything else that escapes is a bug and keeps its
// stack trace. This type deliberately carries no error codes or extra fields: the message is the
// contract.
namespace Cnn.Engine;

/// <summary>
/// A mistake the user can fix (bad file, missing data, bad flag). The CLI prints only
/// <see cref="Exception.Message"/>, on one line, and exits with code 2.
/// </summary>
public sealed class CnnUserException : Exception
{
    /// <summary>Creates the exception with a one-line message naming the file or flag at fault.</summary>
    public CnnUserException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a one-line message and the low-level cause, kept for logs.</summary>
    public CnnUserException(string message, Exception inner)
        : base(message, inner)
    {
    }
}
