import Testing

@testable import Machine

/// The state snapshot's JSON form (docs/state-format.md): what it reads, what it writes, and
/// how it refuses bad input — always naming the field, and the line and column of the value.
@Suite struct StateFormatTests {
  /// A guest in 4-level paging with nothing else: the smallest valid snapshot.
  static let minimal = """
    {"format": "nestcheck-state", "version": 1,
     "guest": {"cr0": "0x80010011", "cr3": "0x1000", "cr4": "0x20", "efer": "0xd00"}}
    """

  @Test("A minimal snapshot takes the documented defaults")
  func minimalSnapshotDefaults() throws {
    let state = try MachineState.load(json: Self.minimal)
    #expect(
      state.processor == Processor(vendor: .intel, physicalAddressBits: 46, gigabytePages: true))
    #expect(state.guest == GuestRegisters(cr0: 0x8001_0011, cr3: 0x1000, cr4: 0x20, efer: 0xD00))
    #expect(state.guest.rflags == 0x2 && state.guest.pkru == 0 && state.guest.pkrs == 0)
    #expect(state.nested == .none)
    #expect(state.shadow == nil)
    #expect(state.memory.words.isEmpty)
    #expect(state.hostRanges.isEmpty)
  }

  static let states: [MachineState] = {
    let guest = GuestRegisters(
      cr0: 0x8001_0011, cr3: 0x1000, cr4: 0x1020, efer: 0xD00, rflags: 0x4_0002, pkru: 0xC,
      pkrs: 0x3)
    var memory = PhysicalMemory()
    memory[0x1000] = 0x2007
    memory[0xF_FFFF_FFFF_FFF8] = UInt64.max
    return [
      MachineState(guest: guest),
      MachineState(
        processor: Processor(vendor: .intel, physicalAddressBits: 39, gigabytePages: false),
        guest: guest,
        nested: .ept(
          ExtendedPageTables(
            eptp: 0x5E, physicalAddressBits: 40, executeOnly: false, gigabytePages: false,
            modeBasedExecute: true)), memory: memory),
      MachineState(
        processor: Processor(vendor: .amd), guest: guest,
        nested: .npt(
          NestedPageTables(
            nCR3: 0x3000, hostCR4: 0x1020, hostEFER: 0x500, physicalAddressBits: 52)),
        memory: memory, hostRanges: [HostRange(base: 0x1_0000_0000, size: 0x4000_0000)]),
      MachineState(
        guest: guest, shadow: ShadowPaging(cr3: 0x9000, guest: guest, unsyncTables: [0x12, 0x13]),
        memory: memory),
    ]
  }()

  @Test("Writing a snapshot and reading it back gives the same state", arguments: states.indices)
  func roundTrip(index: Int) throws {
    let state = Self.states[index]
    #expect(try MachineState.load(json: state.json.text(pretty: true)) == state)
    #expect(try MachineState.load(json: state.json.text()) == state)
  }

  @Test("Numbers may be JSON integers, 0x strings or decimal strings, with underscores")
  func numberSpellings() throws {
    let text = """
      {"format": "nestcheck-state", "version": "1",
       "guest": {"cr0": 2147549201, "cr3": "4096", "cr4": "0x20", "efer": "0x0_d00"},
       "memory": {"4096": 18446744073709551615, "0x1_008": "0X2007"}}
      """
    let state = try MachineState.load(json: text)
    #expect(
      state.guest.cr0 == 0x8001_0011 && state.guest.cr3 == 0x1000 && state.guest.efer == 0xD00)
    #expect(state.memory.words == [0x1000: UInt64.max, 0x1008: 0x2007])
  }

  @Test("Memory words are written in ascending address order")
  func memoryIsSorted() throws {
    var memory = PhysicalMemory()
    for address: UInt64 in [0x3000, 0x1000, 0x2008] { memory[address] = address }
    let state = MachineState(guest: GuestRegisters(cr0: 0, cr3: 0, cr4: 0, efer: 0), memory: memory)
    let written = try #require(state.json["memory"])
    guard case .object(let members) = written.value else {
      Issue.record("memory is not an object")
      return
    }
    #expect(members.map(\.key) == ["0x1000", "0x2008", "0x3000"])
  }

  /// A document that must be refused: the field named, the message, and where the offending
  /// value starts (the first occurrence of `at` in the text; `nil` for errors about the whole
  /// file).
  struct Refusal: CustomTestStringConvertible, Sendable {
    var rule: String
    var text: String
    var field: String
    var message: String
    var at: String?
    var testDescription: String { rule }
  }

  /// The minimal document with `replace` replaced by `with`.
  static func minimal(_ replace: String, _ with: String) -> String {
    minimal.replacing(replace, with: with)
  }

  /// The minimal document with members added at the end of the top-level object.
  static func minimal(adding members: String) -> String {
    String(minimal.dropLast()) + ",\n " + members + "}"
  }

  static let refusals: [Refusal] = [
    Refusal(
      rule: "the format name must be nestcheck-state",
      text: minimal("\"nestcheck-state\"", "\"other\""), field: "format",
      message: "expected \"nestcheck-state\"; this is not a nestcheck state snapshot",
      at: "\"other\""),
    Refusal(
      rule: "only version 1 is known", text: minimal("\"version\": 1", "\"version\": 2"),
      field: "version", message: "unknown format version 2; this nestcheck reads version 1",
      at: "2,"),
    Refusal(
      rule: "the format field is required", text: minimal("\"format\": \"nestcheck-state\", ", ""),
      field: "", message: "missing field \"format\"", at: "{"),
    Refusal(
      rule: "unknown top-level fields are refused", text: minimal(adding: "\"gust\": {}"),
      field: "gust",
      message:
        "unknown field (expected one of: comment, format, guest, hostRanges, memory, nested, "
        + "processor, shadow, version)", at: "{}"),
    Refusal(
      rule: "unknown register fields are refused",
      text: minimal("\"efer\"", "\"cr8\": 0, \"efer\""),
      field: "guest.cr8",
      message: "unknown field (expected one of: cr0, cr3, cr4, efer, pkrs, pkru, rflags)",
      at: "0, \"efer\""),
    Refusal(
      rule: "every control register is required", text: minimal("\"cr3\": \"0x1000\", ", ""),
      field: "guest", message: "missing field \"cr3\"", at: "{\"cr0\""),
    Refusal(
      rule: "a register is a number", text: minimal("\"0x80010011\"", "true"), field: "guest.cr0",
      message: "expected a number (a JSON integer or a string such as \"0x1000\")", at: "true"),
    Refusal(
      rule: "a value wider than 64 bits is refused, as a JSON number",
      text: minimal("\"0x1000\"", "18446744073709551616"), field: "guest.cr3",
      message: "value 18446744073709551616 is wider than 64 bits", at: "18446744073709551616"),
    Refusal(
      rule: "a value wider than 64 bits is refused, as a string",
      text: minimal("\"0x1000\"", "\"0x1_0000_0000_0000_0000\""), field: "guest.cr3",
      message: "value 0x1_0000_0000_0000_0000 is wider than 64 bits", at: "\"0x1_"),
    Refusal(
      rule: "a negative number is refused", text: minimal("\"0x1000\"", "-4096"),
      field: "guest.cr3", message: "expected a non-negative integer, got -4096", at: "-4096"),
    Refusal(
      rule: "a string that is not a number is refused", text: minimal("\"0x1000\"", "\"0x1g\""),
      field: "guest.cr3",
      message: "expected a number such as \"0x1000\" or \"4096\", got \"0x1g\"", at: "\"0x1g\""),
    Refusal(
      rule: "PKRU is a 32-bit register",
      text: minimal("\"efer\": \"0xd00\"", "\"efer\": \"0xd00\", \"pkru\": \"0x1_0000_0000\""),
      field: "guest.pkru", message: "pkru is a 32-bit register; 0x100000000 is wider",
      at: "\"0x1_0000_0000\""),
    Refusal(
      rule: "the nested kind must be none, ept or npt",
      text: minimal(adding: "\"nested\": {\"kind\": \"vmx\"}"), field: "nested.kind",
      message: "unknown value \"vmx\" (expected one of: \"none\", \"ept\", \"npt\")",
      at: "\"vmx\""),
    Refusal(
      rule: "EPT needs an EPTP", text: minimal(adding: "\"nested\": {\"kind\": \"ept\"}"),
      field: "nested", message: "missing field \"eptp\"", at: "{\"kind\""),
    Refusal(
      rule: "NPT fields are refused under EPT",
      text: minimal(adding: "\"nested\": {\"kind\": \"ept\", \"eptp\": 0, \"ncr3\": 0}"),
      field: "nested.ncr3",
      message:
        "unknown field (expected one of: eptp, executeOnly, gigabytePages, kind, "
        + "modeBasedExecute, physicalAddressBits)", at: "0}"),
    Refusal(
      rule: "the vendor must be intel or amd",
      text: minimal(adding: "\"processor\": {\"vendor\": \"via\"}"), field: "processor.vendor",
      message: "unknown value \"via\" (expected one of: \"intel\", \"amd\")", at: "\"via\""),
    Refusal(
      rule: "MAXPHYADDR is between 32 and 52",
      text: minimal(adding: "\"processor\": {\"physicalAddressBits\": 60}"),
      field: "processor.physicalAddressBits", message: "value 60 is outside 32...52", at: "60"),
    Refusal(
      rule: "memory is an object", text: minimal(adding: "\"memory\": []"), field: "memory",
      message: "expected an object mapping addresses to 64-bit words", at: "[]"),
    Refusal(
      rule: "a memory address must be 8-byte aligned",
      text: minimal(adding: "\"memory\": {\"0x1000\": 1, \"0x1004\": 2}"),
      field: "memory[\"0x1004\"]", message: "address is not 8-byte aligned", at: "2}"),
    Refusal(
      rule: "a memory address must be below 2^52",
      text: minimal(adding: "\"memory\": {\"0x10_0000_0000_0000\": 1}"),
      field: "memory[\"0x10_0000_0000_0000\"]",
      message: "address is beyond the 52-bit physical address space", at: "1}"),
    Refusal(
      rule: "a memory address wider than 64 bits is refused",
      text: minimal(adding: "\"memory\": {\"0x1_0000_0000_0000_0000\": 1}"),
      field: "memory[\"0x1_0000_0000_0000_0000\"]", message: "address is wider than 64 bits",
      at: "1}"),
    Refusal(
      rule: "a memory address must be a number",
      text: minimal(adding: "\"memory\": {\"page\": 1}"), field: "memory[\"page\"]",
      message: "expected an address such as \"0x1000\"", at: "1}"),
    Refusal(
      rule: "a memory word wider than 64 bits is refused",
      text: minimal(adding: "\"memory\": {\"0x1000\": \"0x1_0000_0000_0000_0000\"}"),
      field: "memory[\"0x1000\"]", message: "value 0x1_0000_0000_0000_0000 is wider than 64 bits",
      at: "\"0x1_"),
    Refusal(
      rule: "one address spelled twice is refused",
      text: minimal(adding: "\"memory\": {\"0x1000\": 1, \"4096\": 2}"),
      field: "memory[\"4096\"]", message: "address 0x1000 is already given as \"0x1000\"",
      at: "2}"),
    Refusal(
      rule: "a host range must not be empty",
      text: minimal(adding: "\"hostRanges\": [{\"base\": 0, \"size\": 0}]"),
      field: "hostRanges[0]",
      message: "range is empty or runs past the end of the address space", at: "{\"base\""),
  ]

  @Test("Bad input is refused, naming the field and the value's position", arguments: refusals)
  func refusesBadInput(_ r: Refusal) throws {
    let position = r.at.map { marker in Self.position(of: marker, in: r.text) }
    let expected = FormatError(
      file: "state.json", position: position ?? nil, field: r.field, message: r.message)
    #expect(throws: expected) { try MachineState.load(json: r.text, file: "state.json") }
  }

  @Test("Malformed JSON is refused with the line and column where parsing stopped")
  func malformedJSON() {
    let text = "{\"format\": \"nestcheck-state\",\n  \"version\": 1,,}"
    #expect(
      throws: FormatError(
        file: "state.json", position: SourcePosition(line: 2, column: 16), field: "",
        message: "malformed JSON: expected a member name in quotes")
    ) { try MachineState.load(json: text, file: "state.json") }
  }

  @Test("A format error prints as file:line:column: field: message")
  func formatErrorDescription() {
    let error = FormatError(
      file: "s.json", position: SourcePosition(line: 3, column: 7), field: "guest.cr3",
      message: "expected a number")
    #expect(error.description == "s.json:3:7: guest.cr3: expected a number")
    #expect(FormatError(file: "s.json", field: "", message: "empty").description == "s.json: empty")
  }

  /// The line and column where `marker` first occurs in `text`.
  static func position(of marker: String, in text: String) -> SourcePosition? {
    guard let range = text.firstRange(of: marker) else { return nil }
    let before = text[..<range.lowerBound]
    let lineStart = before.lastIndex(of: "\n").map(before.index(after:)) ?? before.startIndex
    return SourcePosition(
      line: before.count { $0 == "\n" } + 1,
      column: before.unicodeScalars[lineStart...].count + 1)
  }
}
