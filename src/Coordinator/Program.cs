// The `cnn` executable: hands the arguments and the real console to Cli, which tests call in-process instead.
// The progress line is rewritten in place only when stdout is a terminal.
return Cnn.Coordinator.Cli.Run(args, Console.Out, Console.Error, interactive: !Console.IsOutputRedirected);
