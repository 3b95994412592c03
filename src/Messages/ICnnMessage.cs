// The marker of every message of this project that may cross a node boundary. One interface, bound to one
// serializer (CnnMessageSerializer, MessagePack); everything else falls back to Hyperion.
namespace Cnn.Messages;

/// <summary>A wire message of Cnn.Distributed, serialized with MessagePack.</summary>
public interface ICnnMessage;
