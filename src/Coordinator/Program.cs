// The `cnn` executable: hands the arguments and the real console to Cli, which tests call in-process instead.
// The progress line is rewritten in place only when stdout is a terminal. Started by `dotnet run`, it first lowers
// that waiting launcher's priority, so that the launcher's JIT does not take a core from the cluster's start.
Cnn.Coordinator.Launcher.YieldToUsIfDotnetRun();
return Cnn.Coordinator.Cli.Run(args, Console.Out, Console.Error, interactive: !Console.IsOutputRedirected);
