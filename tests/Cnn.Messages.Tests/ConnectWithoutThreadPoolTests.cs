// FrameConnection.Connect must not need a thread-pool thread: its caller is usually a worker actor, itself on a
// pool thread, and with every pool thread waiting like that (two workers connecting at once on two cores) a connect
// queued to the pool waited until the pool added a thread, 0.7 to 0.8 s. Here the pool may not grow, and work items
// that wait are queued until one of them cannot start: then no pool thread is free, and a connect that needed one
// would time out. The kernel completes the TCP handshake with nobody calling accept, so the listener needs no
// thread either. The pool's maximum is lowered for the test, so the collection runs alone.
using System.Net;
using System.Net.Sockets;
using Cnn.Messages;
using Xunit;

namespace Cnn.Messages.Tests;

[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ThreadPoolHeldCollection
{
    public const string Name = "thread pool held";
}

[Collection(ThreadPoolHeldCollection.Name)]
public sealed class ConnectWithoutThreadPoolTests
{
    [Fact]
    public void A_connect_succeeds_while_no_thread_pool_thread_is_free()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        int port = ((IPEndPoint)listener.LocalEndpoint).Port;
        ThreadPool.GetMaxThreads(out int maxWorkers, out int maxIo);
        Assert.True(ThreadPool.SetMaxThreads(Math.Max(Environment.ProcessorCount, ThreadPool.ThreadCount), maxIo), "the pool's maximum could not be lowered");
        var release = new ManualResetEventSlim(); // not disposed: the waiting items still touch it as they leave
        try
        {
            for (int queued = 0; ; queued++)
            {
                Assert.True(queued < 1000, "the pool kept finding threads");
                var started = new ManualResetEventSlim();
                ThreadPool.UnsafeQueueUserWorkItem(_ => { started.Set(); release.Wait(); }, null);
                if (!started.Wait(TimeSpan.FromSeconds(1))) break; // every pool thread is taken
            }

            using FrameConnection connection = FrameConnection.Connect("127.0.0.1", port, "run-1", "worker-1", TimeSpan.FromSeconds(5));

            Assert.False(connection.IsEncrypted);
        }
        finally
        {
            ThreadPool.SetMaxThreads(maxWorkers, maxIo);
            release.Set();
            listener.Stop();
        }
    }
}
