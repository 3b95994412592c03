// The coordinator actor's evaluation deadline, with TestProbes playing two workers that registered over Akka. An
// evaluation comes between two steps, so a range held by a frozen worker stalls the whole run until it is dealt
// again: the first evaluation of a run allows ten step-deadline floors (it includes JIT compilation), and every later
// one three times what the recent evaluations took per image, at least one floor.
using Akka.Actor;
using Akka.TestKit;
using Akka.TestKit.Xunit2;
using Cnn.Coordinator.Cluster;
using Cnn.Engine.Models;
using Cnn.Engine.Training;
using Cnn.Messages;
using Xunit;
using Xunit.Abstractions;

namespace Cnn.Cluster.Tests;

public sealed class CoordinatorEvaluationTests(ITestOutputHelper output) : TestKit(NodeConfig, output: output)
{
    private const string NodeConfig = """
        akka.actor.provider = cluster
        akka.remote.dot-netty.tcp { hostname = 127.0.0.1, port = 0 }
        akka.loglevel = WARNING
        """;
    private const string Sha = "5e9f0c8a1d2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5";
    private const string Fingerprint = "avx512f/fma/v1";
    private const int Images = 1000; // two ranges of 500: one each
    private static readonly TimeSpan Floor = TimeSpan.FromSeconds(0.2);
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);
    private static readonly RunPlan Plan = new("run-1", "seed-cnn", MicroBatch: 8, Seed: 1, Sha, Fingerprint);

    private (IActorRef Coordinator, TestProbe A, TestProbe B) Start()
    {
        Model model = Presets.Create("seed-cnn");
        var server = new ParameterServerState(Plan.RunId, model.Parameters, model.Parameters.Initialize(1), new Adam(model.Parameters));
        IActorRef coordinator = Sys.ActorOf(CoordinatorActor.Props(new CoordinatorState(Plan), server, null, Floor, _ => { }));
        TestProbe Join(string id)
        {
            TestProbe worker = CreateTestProbe(id);
            worker.Send(coordinator, new RegisterWorker(id, 1, Sha, Fingerprint, CoordinatorState.ProtocolVersion));
            worker.ExpectMsg<WorkerAccepted>(Patience);
            return worker;
        }
        return (coordinator, Join("a"), Join("b"));
    }

    private static void Answer(TestProbe worker, EvaluateRange range, string id) =>
        worker.Reply(new EvaluationResult(range.RunId, range.EvaluationId, range.Start, range.Count, 1.0, 1, id));

    [Fact]
    public void A_range_a_silent_worker_holds_goes_to_the_other_after_a_floor_once_an_evaluation_has_been_timed()
    {
        var (coordinator, a, b) = Start();
        coordinator.Tell(new CoordinatorActor.RunEvaluation(EvaluationSet.Validation, 0, Images));
        Answer(a, a.ExpectMsg<EvaluateRange>(Patience), "a");
        Answer(b, b.ExpectMsg<EvaluateRange>(Patience), "b");
        Assert.Equal(Images, ExpectMsg<CoordinatorActor.EvaluationDone>(Patience).Result.Samples);

        coordinator.Tell(new CoordinatorActor.RunEvaluation(EvaluationSet.Validation, 0, Images));
        Answer(a, a.ExpectMsg<EvaluateRange>(Patience), "a");
        EvaluateRange held = b.ExpectMsg<EvaluateRange>(Patience); // b says nothing from here on

        // Ten floors (2 s) was the rule for every evaluation; now the deadline is the floor (the first took milliseconds).
        EvaluateRange dealtAgain = a.ExpectMsg<EvaluateRange>(TimeSpan.FromSeconds(1.5));
        Assert.Equal((held.EvaluationId, held.Start, held.Count), (dealtAgain.EvaluationId, dealtAgain.Start, dealtAgain.Count));
        Answer(a, dealtAgain, "a");
        Assert.Equal(Images, ExpectMsg<CoordinatorActor.EvaluationDone>(Patience).Result.Samples);
    }

    [Fact]
    public void The_first_evaluation_of_a_run_waits_ten_floors_for_a_silent_worker()
    {
        var (coordinator, a, b) = Start();
        coordinator.Tell(new CoordinatorActor.RunEvaluation(EvaluationSet.Validation, 0, Images));
        Answer(a, a.ExpectMsg<EvaluateRange>(Patience), "a");
        EvaluateRange held = b.ExpectMsg<EvaluateRange>(Patience);

        a.ExpectNoMsg(Floor * 5);
        EvaluateRange dealtAgain = a.ExpectMsg<EvaluateRange>(Patience);
        Assert.Equal(held.Start, dealtAgain.Start);
    }
}
