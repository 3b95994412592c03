// `cnn summary [--model NAME]`: prints the Keras-style model.summary() table of a built-in model.
// Deliberately builds the model only: no weights are created or loaded.
using System.CommandLine;
using Cnn.Engine.Models;

namespace Cnn.Coordinator.Commands;

/// <summary>The <c>summary</c> command.</summary>
public static class SummaryCommand
{
    /// <summary>The command, writing to <paramref name="io"/>.</summary>
    public static Command Create(CliOutput io)
    {
        var model = ModelOption();
        var command = new Command("summary", "Print a built-in model's layers, output shapes and parameter counts.") { model };
        command.SetAction(parse =>
        {
            io.Out.Write(Presets.Create(parse.GetValue(model)!).Summary());
            return 0;
        });
        return command;
    }

    /// <summary>The --model option shared by the commands (seed-cnn by default).</summary>
    public static Option<string> ModelOption() => new("--model")
    {
        Description = $"Built-in model: {string.Join(", ", Presets.Names)}",
        DefaultValueFactory = _ => "seed-cnn",
    };
}
