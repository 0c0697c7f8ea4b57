import ArgumentParser

/// The `nestcheck` command: the root of every subcommand.
public struct Nestcheck: ParsableCommand {
  /// Describes the tool and lists its subcommands.
  public static let configuration = CommandConfiguration(
    commandName: "nestcheck",
    abstract: "Model checker and test oracle for memory virtualization.",
    discussion: """
      nestcheck knows x86-64 paging, Intel EPT, AMD NPT and the two-dimensional walk between \
      them, and checks implementations against that knowledge.

      Exit codes (docs/exit-codes.md):
        0  success: the command did what was asked, every verdict as expected
        1  a check failed: a property was violated, a divergence was found
        2  bad input: a malformed file, a wrong flag, an unsupported configuration
        3  undecided: a solver timeout or an exhausted budget; never a pass
        4  internal error in nestcheck itself
      """,
    subcommands: [
      Translate.self, Explain.self, Prove.self, Check.self, Fuzz.self, ReplayCommand.self,
      Bench.self,
    ]
  )

  /// Makes the command.
  public init() {}
}
