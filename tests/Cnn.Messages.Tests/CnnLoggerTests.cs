// What the nodes' logger leaves out: only the reports every stopping peer causes, never a warning that says
// something about this run.
using Akka.Event;
using Cnn.Messages;
using Xunit;

namespace Cnn.Messages.Tests;

public sealed class CnnLoggerTests
{
    [Theory]
    [InlineData(true, "TcpServerHandler (akka://cnn)", "Unable to REMOVE channel [[::ffff:127.0.0.1]:43271->[::ffff:127.0.0.1]:48458](Id=0234ff6d) from connection group. May not shut down cleanly.")]
    [InlineData(true, "TcpClientHandler (akka://cnn)", "Unable to REMOVE channel [[::ffff:127.0.0.1]:57958->[::ffff:127.0.0.1]:41375](Id=11314b16) from connection group. May not shut down cleanly.")]
    [InlineData(true, "akka.tcp://cnn@127.0.0.1:4053/system/endpointManager/reliableEndpointWriter-1", "Association with remote system akka.tcp://cnn@127.0.0.2:4053 has failed; address is now gated for 1000 ms. Reason: [Disassociated]")]
    [InlineData(false, "TcpServerHandler (akka://cnn)", "Error caught channel [[::ffff:127.0.0.1]:4053->[::ffff:127.0.0.1]:48458](Id=0234ff6d)")]
    [InlineData(false, "akka.tcp://cnn@127.0.0.1:4053/user/coordinator", "Lost worker worker-2 (node down); 1 workers left")]
    [InlineData(false, "akka.tcp://cnn@127.0.0.1:4053/user/coordinator", "Unable to REMOVE channel: a message that merely starts the same way, from elsewhere")]
    [InlineData(false, "akka.tcp://cnn@127.0.0.1:4053/system/endpointManager", "Tried to associate with unreachable remote address [akka.tcp://cnn@127.0.0.9:4053]")]
    public void Only_the_reports_of_connections_closing_are_left_out(bool noise, string source, string message)
    {
        Assert.Equal(noise, CnnLogger.IsAssociationNoise(new Warning(source, typeof(CnnLoggerTests), message)));
    }

    [Fact]
    public void Information_is_never_taken_for_noise()
    {
        Assert.False(CnnLogger.IsAssociationNoise(new Info("TcpServerHandler (akka://cnn)", typeof(CnnLoggerTests), "Unable to REMOVE channel [x] from connection group.")));
    }
}
