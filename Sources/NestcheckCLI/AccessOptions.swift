import ArgumentParser
import Machine
import ReferenceModel

/// A command whose whole output is one text, made before anything is printed: tests call
/// ``render()`` in-process, and a failure prints nothing but its one-line message.
protocol RenderingCommand: ParsableCommand {
  /// The command's whole output, ending with a newline.
  func render() throws(FormatError) -> String
}

extension RenderingCommand {
  func run() throws {
    print(try render(), terminator: "")
  }
}

/// The options `translate` and `explain` share: which state, which address, which access, and
/// how to answer.
struct AccessOptions: ParsableArguments {
  @Argument(
    help: ArgumentHelp(
      "The state snapshot to translate in (JSON; see docs/state-format.md).",
      discussion: "Example: examples/states/ept-4level.json",
      valueName: "state"))
  var state: String

  @Option(
    name: .customLong("gva"),
    help: ArgumentHelp(
      "The guest virtual (linear) address: 0x hexadecimal or decimal, underscores allowed.",
      discussion: "Example: --gva 0x7f00_0000_1234. Any 64-bit value; a non-canonical one "
        + "gives #GP. With guest paging off it is the guest physical address.",
      valueName: "address"),
    transform: parseAddress)
  var gva: UInt64

  @Option(
    help: ArgumentHelp(
      "The access kind: read, write (including read-modify-write) or fetch.",
      discussion: "Example: --access write",
      valueName: "kind"))
  var access: AccessKindOption

  @Flag(
    help: ArgumentHelp(
      "A user-mode access (CPL 3). Without it the access is supervisor-mode (CPL 0).",
      discussion: "Example: --access read --user"))
  var user = false

  @Flag(
    help: ArgumentHelp(
      "An implicit supervisor access to a system structure (GDT, LDT, IDT, TSS).",
      discussion: "Supervisor-mode at any CPL, and never rescued by EFLAGS.AC under SMAP "
        + "(SEMANTICS §1.4, §1.5 rule 5). Cannot be combined with --user."))
  var implicit = false

  @Flag(
    help: ArgumentHelp(
      "Evaluate every combination of the architecture's allowed choices (SEMANTICS §8).",
      discussion: "Prints the set of distinct outcomes, each with the choices that give it. "
        + "Without this flag the model makes KVM's choices."))
  var allChoices = false

  @Flag(help: "Print JSON instead of text (the shapes are in docs/cli.md).")
  var json = false

  func validate() throws {
    if user && implicit {
      throw ValidationError(
        "--user and --implicit cannot be combined: an implicit access is supervisor-mode")
    }
  }

  /// The access as the model takes it.
  var descriptor: Access { Access(access.kind, user: user, implicit: implicit) }

  /// Loads the state and builds the model over it; every problem names the file and field.
  func model() throws(FormatError) -> ConcreteModel {
    try ConcreteModel(try MachineState.load(file: state), file: state)
  }
}

/// `--access`: the access kinds, spelled as on the command line.
enum AccessKindOption: String, CaseIterable, ExpressibleByArgument {
  case read, write, fetch

  var kind: AccessKind {
    switch self {
    case .read: .read
    case .write: .write
    case .fetch: .fetch
    }
  }
}

/// Parses `--gva`: `0x` hexadecimal or decimal, underscores allowed, at most 64 bits.
func parseAddress(_ text: String) throws -> UInt64 {
  if let value = parseWord(text) { return value }
  let cleaned = text.filter { $0 != "_" }
  let hexadecimal = cleaned.lowercased().hasPrefix("0x")
  let digits = hexadecimal ? cleaned.dropFirst(2) : Substring(cleaned)
  let wellFormed =
    !digits.isEmpty
    && digits.allSatisfy { hexadecimal ? $0.isHexDigit : ("0"..."9").contains($0) }
  throw ValidationError(
    wellFormed
      ? "wider than 64 bits"
      : "not an address; write 0x hexadecimal or decimal, such as 0x7f0000001234")
}
