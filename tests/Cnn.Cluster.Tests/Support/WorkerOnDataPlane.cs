// A WorkerActor accepted into a run whose data plane is a listener of the test's own: the test plays the parameter
// server on the connection the worker opens, reading and writing frames as the real one does.
using Akka.Actor;
using Cnn.Engine.Data;
using Cnn.Engine.Kernels;
using Cnn.Messages;
using Cnn.Worker;

namespace Cnn.Cluster.Tests.Support;

/// <summary>A worker and the test's end of its data plane connection (see file header).</summary>
public sealed class WorkerOnDataPlane : IDisposable
{
    /// <summary>
    /// The configuration of the test's ActorSystem: WorkerActor subscribes to cluster events, so its node needs the
    /// cluster provider; it never joins a cluster here.
    /// </summary>
    public const string NodeConfig = """
        akka.actor.provider = cluster
        akka.remote.dot-netty.tcp.hostname = 127.0.0.1
        akka.remote.dot-netty.tcp.port = 0
        """;

    /// <summary>How long a test waits for the worker to connect, or for a frame or a log line.</summary>
    public static readonly TimeSpan Patience = TimeSpan.FromSeconds(15);

    private readonly FrameListener _listener;

    private WorkerOnDataPlane(FrameListener listener, IActorRef worker, FrameConnection connection, WorkerAccepted acceptance)
    {
        _listener = listener;
        Worker = worker;
        Connection = connection;
        Acceptance = acceptance;
    }

    /// <summary>The worker actor, named "worker", with id "w" and one thread.</summary>
    public IActorRef Worker { get; }

    /// <summary>The parameter server's end of the worker's connection, its hello read; reads time out after the patience given.</summary>
    public FrameConnection Connection { get; }

    /// <summary>What accepted the worker into the run; sent again, it takes a worker that registers again back in.</summary>
    public WorkerAccepted Acceptance { get; }

    /// <summary>
    /// Starts the worker on <paramref name="data"/> in <paramref name="system"/>, accepts it into run
    /// <paramref name="runId"/> of <paramref name="model"/> (work stealing on) and waits for its connection.
    /// </summary>
    /// <exception cref="TimeoutException">The worker did not connect within <paramref name="patience"/>.</exception>
    public static async Task<WorkerOnDataPlane> StartAsync(ActorSystem system, IActorRef coordinator, string model, IDataSource data, string runId,
        int microBatch, TimeSpan patience)
    {
        var accepted = new TaskCompletionSource<FrameConnection>(TaskCreationOptions.RunContinuationsAsynchronously);
        var listener = new FrameListener("127.0.0.1", 0, c => accepted.TrySetResult(c));
        try
        {
            var settings = new WorkerSettings("w", 1, Address.Parse("akka.tcp://cnn@127.0.0.1:1"), Numerics.Fingerprint, WorkerActor.ProtocolVersion);
            IActorRef worker = system.ActorOf(WorkerActor.Props(settings, new WorkerData(data, data, "sha")), "worker");
            var acceptance = new WorkerAccepted(runId, "w", model, microBatch, 1, $"127.0.0.1:{listener.Port}", WorkStealing: true);
            worker.Tell(acceptance, coordinator);
            FrameConnection connection = await accepted.Task.WaitAsync(patience);
            connection.ReadTimeout = patience; // a frame that never comes fails the test instead of hanging it
            if (connection.ReadHello(connection.ReadHeader()) != (runId, "w"))
                throw new InvalidOperationException("the worker's hello names another run or worker");
            return new WorkerOnDataPlane(listener, worker, connection, acceptance);
        }
        catch
        {
            listener.Dispose();
            throw;
        }
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        Connection.Dispose();
        _listener.Dispose();
    }
}
