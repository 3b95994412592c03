// Kernel benchmarks: each fast kernel of Engine/Kernels against its plain reference in Kernels/Reference, at
// the shapes the seed-cnn training step actually uses. Run by hand on a quiet machine (CI only builds them):
//   dotnet run -c Release --project tests/Cnn.Benchmarks                 (pick interactively)
//   dotnet run -c Release --project tests/Cnn.Benchmarks -- --filter '*' (all)
// Whole-step throughput is `cnn bench`, not this.
using BenchmarkDotNet.Running;

BenchmarkSwitcher.FromAssembly(typeof(Cnn.Benchmarks.GemmBenchmarks).Assembly).Run(args);
