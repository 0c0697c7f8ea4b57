import Foundation
import Machine
import Testing

@testable import NestcheckCLI

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// Bad input gives exactly one line naming the file and the field, and exit code 2
/// (docs/exit-codes.md); never a crash or a stack trace.
@Suite struct BadInputTests {
  /// A valid 4-level guest with nothing mapped, to be spoiled one field at a time.
  static let valid = """
    {
      "format": "nestcheck-state",
      "version": 1,
      "guest": {"cr0": "0x80010011", "cr3": "0x1000", "cr4": "0x20", "efer": "0xd00"},
      "memory": {"0x1000": "0x2003"}
    }
    """

  struct Case: CustomTestStringConvertible, Sendable {
    var rule: String
    /// The file's contents.
    var text: String
    /// The line after `nestcheck: FILE`.
    var line: String
    var testDescription: String { rule }
  }

  static func spoil(_ replace: String, _ with: String) -> String {
    valid.replacing(replace, with: with)
  }

  static let fileCases: [Case] = [
    Case(
      rule: "malformed JSON names the line and column",
      text: spoil("\"version\": 1,", "\"version\": 1,,"),
      line: ":3:16: malformed JSON: expected a member name in quotes"),
    Case(
      rule: "an empty file is malformed JSON", text: "",
      line: ":1:1: malformed JSON: unexpected end of text, expected a value"),
    Case(
      rule: "an unknown format is refused", text: spoil("nestcheck-state", "vmcs-dump"),
      line: ":2:13: format: expected \"nestcheck-state\"; this is not a nestcheck state snapshot"),
    Case(
      rule: "an unknown version is refused", text: spoil("\"version\": 1", "\"version\": 7"),
      line: ":3:14: version: unknown format version 7; this nestcheck reads version 1"),
    Case(
      rule: "a misaligned memory address is refused", text: spoil("\"0x1000\": ", "\"0x1001\": "),
      line: ":5:24: memory[\"0x1001\"]: address is not 8-byte aligned"),
    Case(
      rule: "a memory address beyond 52 bits is refused",
      text: spoil("\"0x1000\": ", "\"0x20_0000_0000_0000\": "),
      line:
        ":5:37: memory[\"0x20_0000_0000_0000\"]: "
        + "address is beyond the 52-bit physical address space"
    ),
    Case(
      rule: "a value wider than 64 bits is refused, as a JSON number",
      text: spoil("\"0x2003\"", "99999999999999999999"),
      line: ":5:24: memory[\"0x1000\"]: value 99999999999999999999 is wider than 64 bits"),
    Case(
      rule: "a value wider than 64 bits is refused, as a string",
      text: spoil("\"0x2003\"", "\"0x1_0000_0000_0000_2003\""),
      line: ":5:24: memory[\"0x1000\"]: value 0x1_0000_0000_0000_2003 is wider than 64 bits"),
    Case(
      rule: "an unknown nested kind is refused",
      text: spoil("\"memory\"", "\"nested\": {\"kind\": \"svm\"},\n  \"memory\""),
      line:
        ":5:22: nested.kind: unknown value \"svm\" (expected one of: \"none\", \"ept\", \"npt\")"),
    Case(
      rule: "an unknown field is refused",
      text: spoil("\"memory\"", "\"mem\": {},\n  \"memory\""),
      line: ":5:10: mem: unknown field (expected one of: comment, format, guest, hostRanges, "
        + "memory, nested, processor, shadow, version)"),
    Case(
      rule: "32-bit paging is out of scope",
      text: spoil("\"cr4\": \"0x20\"", "\"cr4\": \"0x0\"").replacing("0xd00", with: "0x0"),
      line: ": guest.cr0: unsupported paging mode: 32-bit and PAE paging are out of scope "
        + "(4-level paging needs CR0.PG, CR4.PAE and EFER.LMA; add CR4.LA57 for 5-level)"),
    Case(
      rule: "PAE paging is out of scope", text: spoil("0xd00", "0x800"),
      line: ": guest.cr0: unsupported paging mode: 32-bit and PAE paging are out of scope "
        + "(4-level paging needs CR0.PG, CR4.PAE and EFER.LMA; add CR4.LA57 for 5-level)"),
    Case(
      rule: "EFER.LMA needs CR0.PG", text: spoil("0x80010011", "0x10011"),
      line: ": guest.efer: EFER.LMA is set but CR0.PG is clear; long mode needs paging"),
    Case(
      rule: "an EPTP walk length other than 4 or 5 is refused",
      text: spoil(
        "\"memory\"", "\"nested\": {\"kind\": \"ept\", \"eptp\": \"0x3016\"},\n  \"memory\""),
      line: ": nested.eptp: page-walk length 3 (bits 5:3) is not 4 or 5"),
    Case(
      rule: "an EPTP memory type other than UC or WB is refused",
      text: spoil(
        "\"memory\"", "\"nested\": {\"kind\": \"ept\", \"eptp\": \"0x301b\"},\n  \"memory\""),
      line: ": nested.eptp: memory type 3 (bits 2:0) is not UC (0) or WB (6)"),
    Case(
      rule: "EPT on an AMD processor is refused",
      text: spoil(
        "\"memory\"",
        "\"processor\": {\"vendor\": \"amd\"},\n"
          + "  \"nested\": {\"kind\": \"ept\", \"eptp\": \"0x301e\"},\n  \"memory\""
      ),
      line: ": nested.kind: EPT is Intel's; processor.vendor is amd"),
    Case(
      rule: "NPT on an Intel processor is refused",
      text: spoil(
        "\"memory\"", "\"nested\": {\"kind\": \"npt\", \"ncr3\": \"0x3000\"},\n  \"memory\""),
      line: ": nested.kind: NPT is AMD's; processor.vendor is intel"),
    Case(
      rule: "CR3 above MAXPHYADDR is refused",
      text: spoil("\"cr3\": \"0x1000\"", "\"cr3\": \"0x4000_0000_1000\""),
      line: ": guest.cr3: bits above MAXPHYADDR (46) are set"),
  ]

  @Test(
    "A bad state file gives one line naming the file and field, exit code 2", arguments: fileCases)
  func badStateFile(_ c: Case) throws {
    let directory = try TemporaryDirectory()
    let path = try directory.file("state.json", c.text)
    for command in ["translate", "explain"] {
      let failure = try #require(
        Command.failure([command, path, "--gva", "0x1000", "--access", "read"]))
      #expect(failure.message == "nestcheck: " + path + c.line)
      #expect(failure.exit == .badInput)
    }
  }

  @Test("A line break in a member name is escaped: the message stays one line")
  func lineBreakInFieldName() throws {
    let directory = try TemporaryDirectory()
    let path = try directory.file("state.json", Self.spoil("\"memory\"", "\"mem\\nory\""))
    let failure = Command.failure(["translate", path, "--gva", "0", "--access", "read"])
    #expect(
      failure?.message
        == "nestcheck: \(path):5:15: mem\\nory: unknown field (expected one of: comment, "
        + "format, guest, hostRanges, memory, nested, processor, shadow, version)")
  }

  @Test("A missing file is named")
  func missingFile() throws {
    let directory = try TemporaryDirectory()
    let path = directory.path("absent.json")
    let failure = Command.failure(["explain", path, "--gva", "0", "--access", "read"])
    #expect(failure?.message == "nestcheck: \(path): no such file or directory")
    #expect(failure?.exit == .badInput)
  }

  @Test("A directory is not a state file")
  func directoryInsteadOfFile() throws {
    let directory = try TemporaryDirectory()
    let failure = Command.failure([
      "translate", directory.url.path, "--gva", "0", "--access", "read",
    ])
    #expect(
      failure?.message
        == "nestcheck: \(directory.url.path): is a directory, not a file")
    #expect(failure?.exit == .badInput)
  }

  @Test(
    "A file that cannot be opened gives the system's reason (a socket, unopenable even as root)")
  func unopenableFile() throws {
    let directory = try TemporaryDirectory()
    let path = directory.path("socket.json")
    let socketDescriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
    #expect(socketDescriptor >= 0)
    defer { close(socketDescriptor) }
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    withUnsafeMutableBytes(of: &address.sun_path) { buffer in
      for (i, byte) in path.utf8.prefix(buffer.count - 1).enumerated() { buffer[i] = byte }
    }
    let bound = withUnsafePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
        bind(socketDescriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
      }
    }
    try #require(bound == 0)
    let failure = Command.failure(["translate", path, "--gva", "0", "--access", "read"])
    #expect(failure?.message == "nestcheck: \(path): cannot open: no such device or address")
    #expect(failure?.exit == .badInput)
  }

  @Test(
    "A file without read permission gives the system's reason",
    .enabled(if: geteuid() != 0, "root reads any file"))
  func unreadableFile() throws {
    let directory = try TemporaryDirectory()
    let path = try directory.file("secret.json", Self.valid)
    try FileManager.default.setAttributes([.posixPermissions: 0], ofItemAtPath: path)
    let failure = Command.failure(["translate", path, "--gva", "0", "--access", "read"])
    #expect(failure?.message == "nestcheck: \(path): cannot open: permission denied")
    #expect(failure?.exit == .badInput)
  }

  @Test("A file over the size limit is refused before it is parsed")
  func oversizedFile() throws {
    let directory = try TemporaryDirectory()
    let path = try directory.file("big.json", String(repeating: " ", count: (1 << 20) + 1))
    #expect(
      throws: FormatError(
        file: path, field: "", message: "larger than the 1 MiB limit for an input file")
    ) {
      try InputFile.text(at: path, limit: 1 << 20, kind: "test")
    }
    #expect(try InputFile.text(at: path, limit: 2 << 20, kind: "test").count == (1 << 20) + 1)
  }

  @Test("A file that is not UTF-8 is refused")
  func notText() throws {
    let directory = try TemporaryDirectory()
    let path = directory.path("binary.json")
    try Data([0x7B, 0xFF, 0xFE, 0x7D]).write(to: URL(fileURLWithPath: path))
    let failure = Command.failure(["translate", path, "--gva", "0", "--access", "read"])
    #expect(
      failure?.message == "nestcheck: \(path): not UTF-8 text (a state snapshot is a JSON document)"
    )
  }

  struct OptionCase: CustomTestStringConvertible, Sendable {
    var rule: String
    var arguments: [String]
    var line: String
    var testDescription: String { rule }
  }

  static let optionCases: [OptionCase] = [
    OptionCase(
      rule: "--gva wider than 64 bits",
      arguments: ["--gva", "0x1_0000_0000_0000_0000", "--access", "read"],
      line: "nestcheck: The value '0x1_0000_0000_0000_0000' is invalid for '--gva <address>': "
        + "wider than 64 bits (see 'nestcheck translate --help')"),
    OptionCase(
      rule: "--gva that is not a number", arguments: ["--gva", "0xfoo", "--access", "read"],
      line: "nestcheck: The value '0xfoo' is invalid for '--gva <address>': not an address; "
        + "write 0x hexadecimal or decimal, such as 0x7f0000001234 "
        + "(see 'nestcheck translate --help')"
    ),
    OptionCase(
      rule: "--gva that is negative", arguments: ["--gva=-1", "--access", "read"],
      line: "nestcheck: The value '-1' is invalid for '--gva <address>': not an address; "
        + "write 0x hexadecimal or decimal, such as 0x7f0000001234 "
        + "(see 'nestcheck translate --help')"
    ),
    OptionCase(
      rule: "--user with --implicit",
      arguments: ["--gva", "0", "--access", "read", "--user", "--implicit"],
      line: "nestcheck: --user and --implicit cannot be combined: an implicit access is "
        + "supervisor-mode (see 'nestcheck translate --help')"),
    OptionCase(
      rule: "an unknown access kind", arguments: ["--gva", "0", "--access", "execute"],
      line:
        "nestcheck: The value 'execute' is invalid for '--access <kind>'. Please provide one of "
        + "'read', 'write' or 'fetch'. (see 'nestcheck translate --help')"),
    OptionCase(
      rule: "a missing --access", arguments: ["--gva", "0"],
      line:
        "nestcheck: Missing expected argument '--access <kind>' "
        + "(see 'nestcheck translate --help')"),
  ]

  @Test("A bad option gives one line naming it, exit code 2", arguments: optionCases)
  func badOption(_ c: OptionCase) throws {
    let failure = try #require(
      Command.failure(["translate", ExampleStates.path("ept-4level.json")] + c.arguments))
    #expect(failure.message == c.line)
    #expect(failure.exit == .badInput)
  }

  @Test("Options are checked before the file is read")
  func optionsBeforeFile() {
    let failure = Command.failure([
      "explain", "/nonexistent.json", "--gva", "zz", "--access", "read",
    ])
    #expect(failure?.message.contains("'--gva <address>'") == true)
  }

  // MARK: The real process

  @Test(
    "runMain prints one line on standard error and exits 2",
    arguments: [
      ["translate", "/nonexistent/state.json", "--gva", "0", "--access", "read"],
      ["explain", "EXAMPLE", "--gva", "0x1_0000_0000_0000_0000", "--access", "read"],
      ["translate", "EXAMPLE", "--gva", "0", "--access", "read", "--user", "--implicit"],
    ])
  func processExitsWithTwo(arguments: [String]) async {
    let arguments: [String] = arguments.map {
      $0 == "EXAMPLE" ? ExampleStates.path("ept-4level.json") : $0
    }
    let result = await #expect(
      processExitsWith: .exitCode(2), observing: [\.standardErrorContent]
    ) { [arguments] in
      Nestcheck.runMain(arguments)
    }
    let errors = String(decoding: result?.standardErrorContent ?? [], as: UTF8.self)
    #expect(errors.hasPrefix("nestcheck: "))
    #expect(errors.filter { $0 == "\n" }.count == 1 && errors.hasSuffix("\n"), "\(errors)")
  }

  @Test("runMain prints the answer on standard output and exits 0")
  func processExitsWithZero() async {
    let path: String = ExampleStates.path("ept-4level.json")
    let result = await #expect(
      processExitsWith: .success, observing: [\.standardOutputContent]
    ) { [path = path as String] in
      Nestcheck.runMain([
        "translate", path, "--gva", "0x7f0000001234", "--access", "write", "--user",
      ])
    }
    #expect(
      String(decoding: result?.standardOutputContent ?? [], as: UTF8.self)
        == "translated: host physical 0x100101234\n")
  }
}
