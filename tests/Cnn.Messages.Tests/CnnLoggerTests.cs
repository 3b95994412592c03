// What the nodes' logger leaves out: only the reports every stopping peer causes, never a warning that says
// something about this run.
using Akka.Event;
using Cnn.Messages;
using Xunit;

namespace Cnn.Messages.Tests;

public sealed class CnnLoggerTests
{
    [Theory]
    [InlineData("TcpServerHandler (akka://cnn)", "Unable to REMOVE channel [[::ffff:127.0.0.1]:43271->[::ffff:127.0.0.1]:48458](Id=0234ff6d) from connection group. May not shut down cleanly.")]
    [InlineData("TcpClientHandler (akka://cnn)", "Unable to REMOVE channel [[::ffff:127.0.0.1]:57958->[::ffff:127.0.0.1]:41375](Id=11314b16) from connection group. May not shut down cleanly.")]
    [InlineData("akka.tcp://cnn@127.0.0.1:4053/system/endpointManager/reliableEndpointWriter-1", "Association with remote system akka.tcp://cnn@127.0.0.2:4053 has failed; address is now gated for 1000 ms. Reason: [Disassociated]")]
    public void The_reports_of_connections_closing_are_left_out(string source, string message)
    {
        Assert.True(CnnLogger.IsAssociationNoise(new Warning(source, typeof(CnnLoggerTests), message)));
    }

    [Theory]
    [InlineData("TcpServerHandler (akka://cnn)", "Error caught channel [[::ffff:127.0.0.1]:4053->[::ffff:127.0.0.1]:48458](Id=0234ff6d)")]
    [InlineData("akka.tcp://cnn@127.0.0.1:4053/user/coordinator", "Lost worker worker-2 (node down); 1 workers left")]
    [InlineData("akka.tcp://cnn@127.0.0.1:4053/user/coordinator", "Unable to REMOVE channel: a message that merely starts the same way, from elsewhere")]
    [InlineData("akka.tcp://cnn@127.0.0.1:4053/system/endpointManager", "Tried to associate with unreachable remote address [akka.tcp://cnn@127.0.0.9:4053]")]
    public void Other_warnings_are_kept(string source, string message)
    {
        Assert.False(CnnLogger.IsAssociationNoise(new Warning(source, typeof(CnnLoggerTests), message)));
    }

    [Fact]
    public void Information_is_never_taken_for_noise()
    {
        Assert.False(CnnLogger.IsAssociationNoise(new Info("TcpServerHandler (akka://cnn)", typeof(CnnLoggerTests), "Unable to REMOVE channel [x] from connection group.")));
    }
}
