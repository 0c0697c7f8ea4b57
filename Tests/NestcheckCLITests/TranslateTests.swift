import Machine
import Testing

@testable import NestcheckCLI

/// `nestcheck translate`: one line per outcome, codes decoded into bit names.
@Suite struct TranslateTests {
  struct Case: CustomTestStringConvertible, Sendable {
    var rule: String
    var state: String
    var arguments: [String]
    var line: String
    var testDescription: String { rule }
  }

  typealias L = ExampleStates.ExampleLayout

  static func access(_ gva: UInt64, _ kind: String, _ flags: String...) -> [String] {
    ["--gva", hex(gva), "--access", kind] + flags
  }

  static let cases: [Case] = [
    Case(
      rule: "a user write to a user-writable page translates",
      state: "ept-4level.json", arguments: access(L.userClean + 0x234, "write", "--user"),
      line: "translated: host physical 0x100101234"),
    Case(
      rule: "a 2-MiB guest page over a 2-MiB EPT page keeps 21 offset bits",
      state: "ept-4level.json", arguments: access(L.largePage + 0x1_2345, "write", "--user"),
      line: "translated: host physical 0x100212345"),
    Case(
      rule: "an implicit supervisor read of a user page translates without SMAP",
      state: "ept-4level.json", arguments: access(L.userData, "read", "--implicit"),
      line: "translated: host physical 0x100100000"),
    Case(
      rule: "a user write to a read-only page is #PF P W/R U/S (§1.5 rule 2)",
      state: "ept-4level.json", arguments: access(L.userReadOnly, "write", "--user"),
      line: "#PF: error code 0x7 (P W/R U/S), CR2 0x7f0000002000"),
    Case(
      rule: "a user read of a supervisor page is #PF P U/S (§1.5 rule 1)",
      state: "ept-4level.json", arguments: access(L.supervisor, "read", "--user"),
      line: "#PF: error code 0x5 (P U/S), CR2 0x7f0000003000"),
    Case(
      rule: "a fetch from an XD page with NXE is #PF P I/D (§1.5 rule 3)",
      state: "ept-4level.json", arguments: access(L.executeDisabled, "fetch", "--user"),
      line: "#PF: error code 0x15 (P U/S I/D), CR2 0x7f0000004000"),
    Case(
      rule: "a not-present PTE is #PF without P (§1.7 step 4b)",
      state: "ept-4level.json", arguments: access(L.unmapped, "write", "--user"),
      line: "#PF: error code 0x6 (W/R U/S), CR2 0x7f0000005000"),
    Case(
      rule: "a reserved bit in a PDE is #PF P RSVD (§1.7 step 4d)",
      state: "ept-4level.json", arguments: access(L.reservedBit, "read"),
      line: "#PF: error code 0x9 (P RSVD), CR2 0x7f0000200000"),
    Case(
      rule: "a non-canonical address is #GP before any walk (§1.2)",
      state: "ept-4level.json", arguments: access(0x8000_0000_0000, "read"),
      line: "#GP(0): non-canonical linear address, nothing walked"),
    Case(
      rule: "a write to a frame EPT maps read/execute is a final EPT violation (§2.6)",
      state: "ept-4level.json", arguments: access(L.nestedReadOnly, "write", "--user"),
      line:
        "EPT violation: qualification 0x1aa (write R X linear-valid final), "
        + "guest physical 0x106000, guest linear 0x7f0000006000"),
    Case(
      rule: "a read of a frame EPT does not map is a final EPT violation without rights",
      state: "ept-4level.json", arguments: access(L.nestedUnmapped, "read"),
      line:
        "EPT violation: qualification 0x181 (read linear-valid final), "
        + "guest physical 0x107000, guest linear 0x7f0000007000"),
    Case(
      rule: "a write-only EPT leaf is a misconfiguration (§2.3 M1)",
      state: "ept-4level.json", arguments: access(L.nestedMisconfigured, "read"),
      line: "EPT misconfiguration: guest physical 0x108000"),
    Case(
      rule: "a guest table EPT does not map faults on the paging-entry read (§2.4)",
      state: "ept-4level.json", arguments: access(L.tableUnmapped, "read"),
      line:
        "EPT violation: qualification 0x81 (read linear-valid paging-entry), "
        + "guest physical 0xe000, guest linear 0x7f0040000000"),
    Case(
      rule: "without EPT A/D flags the guest's A write to a read-only table faults (§4.1 step 5)",
      state: "ept-4level.json", arguments: access(L.readOnlyTable, "read"),
      line:
        "EPT violation: qualification 0xaa (write R X linear-valid paging-entry), "
        + "guest physical 0x5000, guest linear 0x7f0000600000"),
    Case(
      rule: "with EPT A/D flags a guest table read is a write (§2.4)",
      state: "ept-4level-ad.json", arguments: access(L.readOnlyTable, "read"),
      line:
        "EPT violation: qualification 0xab (read write R X linear-valid paging-entry), "
        + "guest physical 0x5000, guest linear 0x7f0000600000"),
    Case(
      rule: "5-level guest over 5-level EPT translates the same address",
      state: "ept-5level.json", arguments: access(L.userClean + 0x234, "read"),
      line: "translated: host physical 0x100101234"),
    Case(
      rule: "NPT: a write to a read-only nested leaf is #NPF P RW US, final (§3.3)",
      state: "npt-4level.json", arguments: access(L.nestedReadOnly, "write", "--user"),
      line: "#NPF: EXITINFO1 0x100000007 (P RW US final), EXITINFO2 0x106000"),
    Case(
      rule: "NPT: a supervisor read of an unmapped frame still reports US (§3.2)",
      state: "npt-4level.json", arguments: access(L.nestedUnmapped, "read"),
      line: "#NPF: EXITINFO1 0x100000004 (US final), EXITINFO2 0x107000"),
    Case(
      rule: "NPT: a read-only guest table faults as a write, page-table (§3.2, bit 33)",
      state: "npt-4level.json", arguments: access(L.readOnlyTable, "read"),
      line: "#NPF: EXITINFO1 0x200000007 (P RW US page-table), EXITINFO2 0x5000"),
    Case(
      rule: "without nested paging the guest physical address is the host's",
      state: "native-4level.json", arguments: access(L.userClean + 0x234, "write", "--user"),
      line: "translated: host physical 0x101234"),
  ]

  @Test("translate prints the outcome in one line", arguments: cases)
  func printsOutcome(_ c: Case) throws {
    let output = try Command.output(["translate", ExampleStates.path(c.state)] + c.arguments)
    #expect(output == c.line + "\n")
  }

  @Test("--gva takes decimal and underscores as well as hexadecimal")
  func addressSpellings() throws {
    let path = ExampleStates.path("ept-4level.json")
    let expected = try Command.output(
      ["translate", path, "--gva", "0x7f0000001234", "--access", "read"])
    for spelling in ["0x7f00_0000_1234", "139637976732212", "0X7F0000001234"] {
      #expect(
        try Command.output(["translate", path, "--gva", spelling, "--access", "read"]) == expected)
    }
  }

  @Test("translate --json gives the outcome's values and decoded bits")
  func jsonOutput() throws {
    let path = ExampleStates.path("ept-4level.json")
    let json = try Command.json(
      ["translate", path] + Self.access(L.userReadOnly, "write", "--user"))
    #expect(json.keys == ["format", "version", "state", "gva", "access", "outcome", "decision"])
    #expect(json["format"]?.string == "nestcheck-translate")
    #expect(json["gva"]?.string == "0x7f0000002000")
    #expect(
      json["outcome"]
        == .object([
          "result": .string("page-fault"), "errorCode": .string("0x7"),
          "linearAddress": .string("0x7f0000002000"),
          "bits": .array([.string("P"), .string("W/R"), .string("U/S")]),
        ]))
    #expect(json["decision"]?["rule"]?.string == "userWriteToReadOnly")
    #expect(json["decision"]?["stage"]?.string == "guest")
  }

  @Test("--all-choices: the A/D-write order and the read bit give four outcomes (§4.1, §2.6)")
  func allChoicesText() throws {
    let output = try Command.output(
      ["translate", ExampleStates.path("ept-4level.json")]
        + Self.access(L.readOnlyTableUnmappedFrame, "read", "--all-choices"))
    let lines = output.split(separator: "\n").map(String.init)
    #expect(
      lines.first
        == "4 distinct outcomes over 32 combinations of the allowed choices (SEMANTICS §8):")
    #expect(
      lines.filter { $0.hasPrefix("    when ") } == [
        "    when accessedDirtyBeforeFinal = false, advancedQualification = false",
        "    when accessedDirtyBeforeFinal = true, readBitOnAccessedDirtyWrite = false",
        "    when accessedDirtyBeforeFinal = true, readBitOnAccessedDirtyWrite = true",
        "    when accessedDirtyBeforeFinal = false, advancedQualification = true",
      ])
  }

  @Test("--all-choices --json lists each outcome once, with every combination that gives it")
  func allChoicesJSON() throws {
    let json = try Command.json(
      ["translate", ExampleStates.path("ept-4level.json")]
        + Self.access(L.readOnlyTableUnmappedFrame, "read", "--all-choices"))
    let allowed = try #require(json["allowed"]?.items)
    #expect(allowed.count == 4)
    #expect(allowed.map { $0["choices"]?.items?.count ?? 0 }.reduce(0, +) == 32)
    #expect(
      allowed.map { $0["outcome"]?["qualification"]?.string } == ["0x181", "0xaa", "0xab", "0xf81"])
  }

  @Test("--all-choices on an access no choice affects gives one outcome")
  func allChoicesSingle() throws {
    let output = try Command.output(
      ["translate", ExampleStates.path("ept-4level.json")]
        + Self.access(L.userClean, "write", "--user", "--all-choices"))
    #expect(
      output == """
        one outcome over all 32 combinations of the allowed choices (SEMANTICS §8):
          translated: host physical 0x100101000
            decided by every check passed
            whatever the choices

        """)
  }
}
