import Machine
import Testing

@testable import NestcheckCLI

/// `nestcheck explain`: every memory reference of the walk in the order of SEMANTICS §4.2, each
/// entry decoded, then rights, A/D writes, the deciding rule and the outcome.
@Suite struct ExplainTests {
  typealias L = ExampleStates.ExampleLayout

  static func explain(_ state: String, _ gva: UInt64, _ kind: String, _ flags: String...)
    -> [String]
  {
    ["explain", ExampleStates.path(state), "--gva", hex(gva), "--access", kind] + flags
  }

  /// One reference as (dimension, guest level of a nested-table walk, level name).
  struct Step: Equatable, CustomStringConvertible {
    var dimension: String
    var guestLevel: Int?
    var levelName: String
    var description: String { "\(dimension) \(guestLevel.map(String.init) ?? "-") \(levelName)" }
  }

  /// The order of SEMANTICS §4.2 for an n-level guest over an m-level nested walk with 4-KiB
  /// pages everywhere: for each guest level, the nested walk of its entry's address then the
  /// entry; then the nested walk of the final address.
  static func order(guestLevels n: Int, nestedLevels m: Int, prefix: String) -> [Step] {
    let names = ["PTE", "PDE", "PDPTE", "PML4E", "PML5E"]
    let nested = { (dimension: String, g: Int?) in
      (1...m).reversed().map {
        Step(dimension: dimension, guestLevel: g, levelName: prefix + names[$0 - 1])
      }
    }
    var steps: [Step] = []
    for g in (1...n).reversed() {
      if m > 0 { steps += nested("nested-table", g) }
      steps.append(Step(dimension: "guest", guestLevel: nil, levelName: names[g - 1]))
    }
    if m > 0 { steps += nested("nested-final", nil) }
    return steps
  }

  static func steps(_ json: JSON) -> [Step] {
    (json["references"]?.items ?? []).map {
      Step(
        dimension: $0["dimension"]?.string ?? "?", guestLevel: $0["guestLevel"]?.int,
        levelName: $0["levelName"]?.string ?? "?")
    }
  }

  @Test("4-level guest over 4-level EPT: the 24 references in the order of §4.2")
  func twentyFourReferencesInOrder() throws {
    let json = try Command.json(
      Self.explain("ept-4level.json", L.userClean + 0x234, "write", "--user"))
    #expect(json["referenceCount"]?.int == 24)
    #expect(Self.steps(json) == Self.order(guestLevels: 4, nestedLevels: 4, prefix: "EPT "))
  }

  @Test(
    "A guest entry is read in the frame its nested walk ends at; nested walks start at the root"
  )
  func referencesChain() throws {
    let json = try Command.json(
      Self.explain("ept-4level.json", L.userClean + 0x234, "write", "--user"))
    let references = try #require(json["references"]?.items)
    for (i, reference) in references.enumerated() {
      let address = try #require(reference["hostPhysical"]?.string.flatMap(parseWord))
      if reference["dimension"]?.string == "guest" {
        let frame = references[i - 1]["entry"]?["frame"]?.string.flatMap(parseWord)
        #expect(address & ~0xFFF == frame, "reference \(i + 1)")
      } else if reference["levelName"]?.string == "EPT PML4E" {
        #expect(address == 0x1000, "reference \(i + 1)")
      }
    }
    let last = try #require(references.last?["entry"]?["frame"]?.string.flatMap(parseWord))
    #expect(json["outcome"]?["hostPhysical"]?.string == hex(last | 0x234))
  }

  struct CountCase: CustomTestStringConvertible, Sendable {
    var rule: String
    var state: String
    var gva: UInt64
    var count: Int
    var testDescription: String { rule }
  }

  static let counts: [CountCase] = [
    CountCase(
      rule: "5 over 5 makes 35 references", state: "ept-5level.json", gva: L.userData, count: 35),
    CountCase(
      rule: "4 over 4-level NPT makes 24", state: "npt-4level.json", gva: L.userData, count: 24),
    CountCase(
      rule: "native 4-level makes 4", state: "native-4level.json", gva: L.userData, count: 4),
    CountCase(
      rule: "a 2-MiB guest page over a 2-MiB EPT page makes 3·5 + 3 = 18",
      state: "ept-4level.json",
      gva: L.largePage, count: 18),
    CountCase(
      rule: "a fault on the guest PDPTE's nested walk stops at reference 14",
      state: "ept-4level.json", gva: L.tableUnmapped, count: 14),
    CountCase(rule: "#GP makes none", state: "ept-4level.json", gva: 0x8000_0000_0000, count: 0),
  ]

  @Test("The reference count follows §4.2", arguments: counts)
  func referenceCounts(_ c: CountCase) throws {
    let json = try Command.json(Self.explain(c.state, c.gva, "read"))
    #expect(json["referenceCount"]?.int == c.count)
    #expect(json["references"]?.items?.count == c.count)
  }

  @Test("5 over 5 and NPT keep the §4.2 order")
  func otherOrders() throws {
    let five = try Command.json(Self.explain("ept-5level.json", L.userData, "read"))
    #expect(Self.steps(five) == Self.order(guestLevels: 5, nestedLevels: 5, prefix: "EPT "))
    let npt = try Command.json(Self.explain("npt-4level.json", L.userData, "read"))
    #expect(Self.steps(npt) == Self.order(guestLevels: 4, nestedLevels: 4, prefix: "NPT "))
    let native = try Command.json(Self.explain("native-4level.json", L.userData, "read"))
    #expect(Self.steps(native) == Self.order(guestLevels: 4, nestedLevels: 0, prefix: ""))
  }

  @Test("The human output: a header, one row per reference, then the summary")
  func humanOutput() throws {
    let path = ExampleStates.path("ept-4level.json")
    let output = try Command.output(
      ["explain", path, "--gva", "0x7f0000001234", "--access", "write", "--user"])
    let lines = output.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    #expect(lines[0] == "user-mode write at guest virtual 0x7f0000001234 in \(path)")
    #expect(
      lines[1]
        == "machine: 4-level guest paging over 4-level EPT (A/D flags off); 24 memory references")
    #expect(
      lines[3].split(separator: " ", omittingEmptySubsequences: true) == [
        "#", "dimension", "level", "host", "physical", "entry", "decoded",
      ])
    #expect(
      lines[4]
        == " 1  nested for guest PML4E  EPT PML4E  0x1000         0x2007       "
        + "R W X -> table 0x2000"
    )
    #expect(
      lines[8]
        == " 5  guest                   PML4E      0x1000017f0    0x2027       "
        + "P R/W U/S A -> table 0x2000"
    )
    #expect(
      lines[23]
        == "20  guest                   PTE        0x100004008    0x101007     "
        + "P R/W U/S -> 4 KiB frame 0x101000"
    )
    #expect(
      lines[27]
        == "24  nested final            EPT PTE    0x4808         0x100101037  "
        + "R W X memtype=WB -> 4 KiB frame 0x100101000"
    )
    #expect(
      Array(lines[29...]) == [
        "guest rights:  user-mode address, writable, executable, protection key 0; 4 KiB page",
        "nested rights: readable, writable, executable; 4 KiB page",
        "A/D writes:    guest PTE at 0x100004008: A D",
        "decided by:    every check passed",
        "outcome:       translated: host physical 0x100101234",
        "",
      ])
  }

  struct DecodedCase: CustomTestStringConvertible, Sendable {
    var rule: String
    var state: String
    var gva: UInt64
    var kind: String
    /// The reference shown: its number, or `nil` for the last.
    var row: Int? = nil
    /// Its decoded column.
    var decoded: String
    var testDescription: String { rule }
  }

  static let decoded: [DecodedCase] = [
    DecodedCase(
      rule: "a reserved bit set in a PDE is marked", state: "ept-4level.json", gva: L.reservedBit,
      kind: "read", decoded: "P R/W U/S A -> table 0xf000 !! reserved bit 51 set"),
    DecodedCase(
      rule: "clear permission bits show with a minus", state: "ept-4level.json",
      gva: L.userReadOnly, kind: "read", row: 20, decoded: "P -R/W U/S A -> 4 KiB frame 0x102000"),
    DecodedCase(
      rule: "XD shows where EFER.NXE makes it a bit", state: "ept-4level.json",
      gva: L.executeDisabled, kind: "read", row: 20,
      decoded: "P R/W U/S A XD -> 4 KiB frame 0x104000"),
    DecodedCase(
      rule: "a not-present x86 entry shows nothing but P", state: "ept-4level.json",
      gva: L.unmapped, kind: "read", decoded: "not present (P = 0)"),
    DecodedCase(
      rule: "an EPT misconfiguration is marked with its rule", state: "ept-4level.json",
      gva: L.nestedMisconfigured, kind: "read",
      decoded:
        "-R W -X memtype=WB -> 4 KiB frame 0x100108000 "
        + "!! EPT entry write-only or write-execute (§2.3 M1)"
    ),
    DecodedCase(
      rule: "a not-present EPT entry", state: "ept-4level.json", gva: L.nestedUnmapped,
      kind: "read", decoded: "not present (R W X = 0 0 0)"),
    DecodedCase(
      rule: "a 2-MiB guest leaf shows PS and its frame", state: "native-4level.json",
      gva: L.largePage, kind: "read", decoded: "P R/W U/S A PS -> 2 MiB frame 0x200000"),
    DecodedCase(
      rule: "NPT entries decode in the x86 format", state: "npt-4level.json", gva: L.userData,
      kind: "read", decoded: "P R/W U/S A -> 4 KiB frame 0x100100000"),
  ]

  @Test("Entries are decoded into the manuals' names", arguments: decoded)
  func decodedEntries(_ c: DecodedCase) throws {
    let output = try Command.output(Self.explain(c.state, c.gva, c.kind))
    let rows = output.split(separator: "\n").filter {
      $0.split(separator: " ").first.flatMap { Int($0) } != nil
    }
    let row = try #require(c.row.map { rows[$0 - 1] } ?? rows.last)
    #expect(row.hasSuffix("  " + c.decoded), "\(row)")
  }

  @Test("The JSON output has the documented shape")
  func jsonShape() throws {
    let json = try Command.json(Self.explain("ept-4level-ad.json", L.userClean, "write", "--user"))
    #expect(
      json.keys == [
        "format", "version", "state", "gva", "access", "machine", "choices", "referenceCount",
        "references", "guestRights", "guestPageSize", "nestedRights", "nestedPageSize",
        "accessedDirtyWrites", "decision", "outcome",
      ])
    #expect(json["format"]?.string == "nestcheck-explain")
    let first = try #require(json["references"]?[0])
    #expect(
      first.keys == [
        "index", "dimension", "guestLevel", "level", "levelName", "hostPhysical", "value", "entry",
      ])
    #expect(
      first["entry"]
        == .object([
          "format": .string("ept"), "present": .bool(true), "leaf": .bool(false),
          "fields": .object([
            "R": .integer(1), "W": .integer(1), "X": .integer(1), "A": .integer(0),
            "XU": .integer(0), "SVE": .integer(0),
          ]),
          "table": .string("0x2000"), "reservedBitsSet": .string("0x0"), "problems": .array([]),
        ]))
    #expect(
      json["guestRights"]
        == .object([
          "user": .bool(true), "writable": .bool(true), "executable": .bool(true),
          "protectionKey": .integer(0),
        ]))
    #expect(json["guestPageSize"]?.int == 4096)
  }

  @Test(
    "With EPT A/D flags every EPT entry used gets A, written leaves D, once each (§2.5)"
  )
  func eptAccessedDirtyWrites() throws {
    let json = try Command.json(Self.explain("ept-4level-ad.json", L.userClean, "write", "--user"))
    let writes = try #require(json["accessedDirtyWrites"]?.items)
    let summary = writes.map {
      [$0["tables"], $0["levelName"], $0["hostPhysical"]].map { $0?.string ?? "" }
        .joined(separator: " ") + " "
        + ($0["names"]?.items ?? []).compactMap(\.string).joined(separator: "")
    }
    #expect(
      summary == [
        "nested EPT PML4E 0x1000 A", "nested EPT PDPTE 0x2000 A", "nested EPT PDE 0x3000 A",
        "nested EPT PTE 0x4008 AD", "nested EPT PTE 0x4010 AD", "nested EPT PTE 0x4018 AD",
        "nested EPT PTE 0x4020 AD", "nested EPT PTE 0x4808 AD", "guest PTE 0x100004008 AD",
      ])
  }

  @Test("A fault before the final translation leaves nested rights out")
  func faultBeforeFinal() throws {
    let json = try Command.json(Self.explain("ept-4level.json", L.unmapped, "read"))
    #expect(json["nestedRights"] == .null)
    #expect(json["nestedPageSize"] == .null)
    #expect(json["guestPageSize"] == .null)
    #expect(json["decision"]?["rule"]?.string == "notPresent")
    let text = try Command.output(Self.explain("ept-4level.json", L.unmapped, "read"))
    #expect(text.contains("nested rights: final guest physical address not reached\n"))
    #expect(text.contains("decided by:    entry not present (§1.7 step 4b): guest PTE\n"))
  }

  @Test("explain --all-choices adds the allowed outcomes after the walk")
  func allChoices() throws {
    let output = try Command.output(
      Self.explain("ept-4level.json", L.readOnlyTable, "read", "--all-choices"))
    #expect(output.contains("\n\n2 distinct outcomes over 32 combinations"))
    let json = try Command.json(
      Self.explain("ept-4level.json", L.readOnlyTable, "read", "--all-choices"))
    #expect(json["allowed"]?.items?.count == 2)
  }
}

/// The decoded column comes from the model's own formats: which bits are reserved depends on
/// the vendor, EFER.NXE and the capabilities, exactly as the walk decides (SEMANTICS §1.3, §2.3).
@Suite struct EntryDecodingTests {
  /// A native 4-level machine whose PML4E and PTE for virtual 0 are given.
  static func native(vendor: Vendor = .intel, efer: UInt64, pml4e: UInt64, pte: UInt64)
    -> MachineState
  {
    var memory = PhysicalMemory()
    memory[0x1000] = pml4e | 0x2000
    memory[0x2000] = 0x3007
    memory[0x3000] = 0x4007
    memory[0x4000] = pte | 0x5000
    return MachineState(
      processor: Processor(vendor: vendor),
      guest: GuestRegisters(cr0: 0x8001_0011, cr3: 0x1000, cr4: 0x20, efer: efer), memory: memory)
  }

  struct Case: CustomTestStringConvertible, Sendable {
    var rule: String
    var state: MachineState
    /// The decoded column of each reference.
    var decoded: [String]
    var testDescription: String { rule }
  }

  static let cases: [Case] = [
    Case(
      rule: "with EFER.NXE, bit 63 is XD",
      state: native(efer: 0xD00, pml4e: 0x7, pte: 1 << 63 | 0x67),
      decoded: [
        "P R/W U/S -> table 0x2000", "P R/W U/S -> table 0x3000", "P R/W U/S -> table 0x4000",
        "P R/W U/S A D XD -> 4 KiB frame 0x5000",
      ]),
    Case(
      rule: "without EFER.NXE, bit 63 is reserved",
      state: native(efer: 0x500, pml4e: 0x7, pte: 1 << 63 | 0x67),
      decoded: [
        "P R/W U/S -> table 0x2000", "P R/W U/S -> table 0x3000", "P R/W U/S -> table 0x4000",
        "P R/W U/S A D -> 4 KiB frame 0x5000 !! reserved bit 63 set",
      ]),
    Case(
      rule: "on AMD, bit 8 of a PML4E is reserved",
      state: native(vendor: .amd, efer: 0xD00, pml4e: 0x107, pte: 0x7),
      decoded: ["P R/W U/S -> table 0x2000 !! reserved bit 8 set"]),
    Case(
      rule: "on Intel, bit 8 of a PML4E is ignored",
      state: native(vendor: .intel, efer: 0xD00, pml4e: 0x107, pte: 0x107),
      decoded: [
        "P R/W U/S -> table 0x2000", "P R/W U/S -> table 0x3000", "P R/W U/S -> table 0x4000",
        "P R/W U/S G -> 4 KiB frame 0x5000",
      ]),
    Case(
      rule: "PS in a PML4E is reserved",
      state: native(efer: 0xD00, pml4e: 0x87, pte: 0x7),
      decoded: ["P R/W U/S -> table 0x2000 !! reserved bit 7 set"]),
    Case(
      rule: "a protection key shows in a leaf",
      state: native(efer: 0xD00, pml4e: 0x7, pte: 0x3 << 59 | 0x7),
      decoded: [
        "P R/W U/S -> table 0x2000", "P R/W U/S -> table 0x3000", "P R/W U/S -> table 0x4000",
        "P R/W U/S key=3 -> 4 KiB frame 0x5000",
      ]),
  ]

  @Test("Reserved bits and fields are decoded as the model reads them", arguments: cases)
  func decoded(_ c: Case) throws {
    let directory = try TemporaryDirectory()
    let path = try directory.file("state.json", c.state.json.text(pretty: true))
    let json = try Command.json(["explain", path, "--gva", "0", "--access", "read"])
    let text = try Command.output(["explain", path, "--gva", "0", "--access", "read"])
    let rows = text.split(separator: "\n").filter {
      $0.split(separator: " ").first.flatMap { Int($0) } != nil
    }
    #expect(rows.count == c.decoded.count)
    for (row, decoded) in zip(rows, c.decoded) {
      #expect(row.hasSuffix("  " + decoded), "\(row)")
    }
    let reserved = json["references"]?.items?.last?["entry"]?["reservedBitsSet"]?.string
    #expect((reserved == "0x0") == !c.decoded.joined().contains("!!"))
  }

  @Test("An execute-only EPT leaf is a misconfiguration only where unsupported (§2.3 M2)")
  func executeOnly() throws {
    var memory = PhysicalMemory()
    memory[0x1000] = 0x2007
    memory[0x2000] = 0x3007
    memory[0x3000] = 0x4007
    memory[0x4000] = 0x5034  // X only, WB
    for supported in [true, false] {
      let state = MachineState(
        guest: GuestRegisters(cr0: 0x11, cr3: 0, cr4: 0, efer: 0),
        nested: .ept(ExtendedPageTables(eptp: 0x101E, executeOnly: supported)), memory: memory)
      let directory = try TemporaryDirectory()
      let path = try directory.file("state.json", state.json.text(pretty: true))
      let text = try Command.output(["explain", path, "--gva", "0", "--access", "fetch"])
      let marked = text.contains(
        "-R -W X memtype=WB -> 4 KiB frame 0x5000 "
          + "!! EPT entry execute-only, unsupported (§2.3 M2)")
      #expect(marked == !supported)
      #expect(
        text.hasSuffix(supported ? "translated: host physical 0x5000\n" : "guest physical 0x0\n"))
    }
  }

  @Test("With guest paging off only the final nested walk is made")
  func pagingOff() throws {
    var memory = PhysicalMemory()
    for (address, value): (UInt64, UInt64) in [
      (0x1000, 0x2007), (0x2000, 0x3007), (0x3000, 0x4007), (0x4008, 0x5037),
    ] {
      memory[address] = value
    }
    let state = MachineState(
      guest: GuestRegisters(cr0: 0x11, cr3: 0, cr4: 0, efer: 0),
      nested: .ept(ExtendedPageTables(eptp: 0x101E)), memory: memory)
    let directory = try TemporaryDirectory()
    let path = try directory.file("state.json", state.json.text(pretty: true))
    let text = try Command.output(["explain", path, "--gva", "0x1234", "--access", "read"])
    let lines = text.split(separator: "\n").map(String.init)
    #expect(
      lines[0] == "supervisor-mode read at guest physical 0x1234 (guest paging is off) in \(path)")
    #expect(
      lines[1] == "machine: guest paging off, 4-level EPT (A/D flags off); 4 memory references")
    #expect(lines.contains("guest rights:  none: guest paging is off"))
    #expect(lines.last == "outcome:       translated: host physical 0x5234")
    let json = try Command.json(["explain", path, "--gva", "0x1234", "--access", "read"])
    #expect(json["guestRights"] == .null)
    #expect(ExplainTests.steps(json).allSatisfy { $0.dimension == "nested-final" })
  }
}
