/// The JSON form of a ``MachineState`` (docs/state-format.md), version 1.
///
/// ```json
/// { "format": "nestcheck-state", "version": 1,
///   "processor": { "vendor": "intel", "physicalAddressBits": 46, "gigabytePages": true },
///   "guest": { "cr0": "0x80010001", "cr3": "0x1000", "cr4": "0x20", "efer": "0xd00" },
///   "nested": { "kind": "ept", "eptp": "0x501e" },
///   "memory": { "0x1000": "0x2007" } }
/// ```
///
/// 64-bit values are written as `0x` strings; JSON integers and decimal strings are accepted on
/// input. Unknown fields are errors, never ignored.
extension MachineState {
  /// The value of the `format` field that identifies a state snapshot.
  public static let formatName = "nestcheck-state"
  /// The format version this build reads and writes.
  public static let formatVersion = 1
  /// The highest physical address any x86 processor can have: bits 51:0.
  public static let physicalAddressLimit: UInt64 = 1 << 52

  /// Reads a snapshot from JSON text; `file` names the source in error messages.
  public static func load(json text: String, file: String? = nil) throws(FormatError)
    -> MachineState
  {
    let document: JSON
    do {
      document = try JSON.parse(text)
    } catch {
      throw FormatError(
        file: file, position: error.position, field: "", message: "malformed JSON: \(error.message)"
      )
    }
    return try decode(JSONReader(document, file: file))
  }

  /// Reads a snapshot from a parsed JSON document.
  public static func decode(_ root: JSONReader) throws(FormatError) -> MachineState {
    _ = try root.object(allowing: [
      "format", "version", "processor", "guest", "nested", "shadow", "memory", "hostRanges",
      "comment",
    ])
    let format = try root.required("format")
    guard try format.string() == formatName else {
      throw format.error("expected \"\(formatName)\"; this is not a nestcheck state snapshot")
    }
    let version = try root.required("version")
    let number = try version.word()
    guard number == UInt64(formatVersion) else {
      throw version.error(
        "unknown format version \(number); this nestcheck reads version \(formatVersion)")
    }
    let processor = try root.optional("processor").map(decodeProcessor) ?? Processor()
    let guest = try decodeGuest(try root.required("guest"))
    let nested = try root.optional("nested").map(decodeNested) ?? NestedPaging.none
    let shadow = try root.optional("shadow").map { r throws(FormatError) in
      try decodeShadow(r, guest: guest)
    }
    let memory = try root.optional("memory").map(decodeMemory) ?? PhysicalMemory()
    let ranges = try root.optional("hostRanges").map(decodeRanges) ?? []
    return MachineState(
      processor: processor, guest: guest, nested: nested, shadow: shadow, memory: memory,
      hostRanges: ranges)
  }

  private static func decodeProcessor(_ r: JSONReader) throws(FormatError) -> Processor {
    _ = try r.object(allowing: ["vendor", "physicalAddressBits", "gigabytePages"])
    var p = Processor()
    if let v = r.optional("vendor") { p.vendor = try v.choice(Vendor.self) }
    if let v = r.optional("physicalAddressBits") {
      p.physicalAddressBits = try v.integer(in: 32...52)
    }
    if let v = r.optional("gigabytePages") { p.gigabytePages = try v.bool() }
    return p
  }

  private static func decodeGuest(_ r: JSONReader) throws(FormatError) -> GuestRegisters {
    _ = try r.object(allowing: ["cr0", "cr3", "cr4", "efer", "rflags", "pkru", "pkrs"])
    var g = GuestRegisters(
      cr0: try r.required("cr0").word(), cr3: try r.required("cr3").word(),
      cr4: try r.required("cr4").word(), efer: try r.required("efer").word())
    if let v = r.optional("rflags") { g.rflags = try v.word() }
    if let v = r.optional("pkru") { g.pkru = try v.word() }
    if let v = r.optional("pkrs") { g.pkrs = try v.word() }
    for (name, value) in [("pkru", g.pkru), ("pkrs", g.pkrs)] where value > UInt64(UInt32.max) {
      throw (r.optional(name) ?? r).error("\(name) is a 32-bit register; \(hex(value)) is wider")
    }
    return g
  }

  /// The nested paging kinds the format names.
  public enum NestedKind: String, CaseIterable, Sendable {
    /// No nested paging.
    case none
    /// Intel EPT.
    case ept
    /// AMD NPT.
    case npt
  }

  private static func decodeNested(_ r: JSONReader) throws(FormatError) -> NestedPaging {
    let kindReader = try r.required("kind")
    switch try kindReader.choice(NestedKind.self) {
    case .none:
      _ = try r.object(allowing: ["kind"])
      return .none
    case .ept:
      _ = try r.object(allowing: [
        "kind", "eptp", "physicalAddressBits", "executeOnly", "gigabytePages", "modeBasedExecute",
      ])
      var e = ExtendedPageTables(eptp: try r.required("eptp").word())
      if let v = r.optional("physicalAddressBits") {
        e.physicalAddressBits = try v.integer(in: 32...52)
      }
      if let v = r.optional("executeOnly") { e.executeOnly = try v.bool() }
      if let v = r.optional("gigabytePages") { e.gigabytePages = try v.bool() }
      if let v = r.optional("modeBasedExecute") { e.modeBasedExecute = try v.bool() }
      return .ept(e)
    case .npt:
      _ = try r.object(allowing: ["kind", "ncr3", "hostCR4", "hostEFER", "physicalAddressBits"])
      var n = NestedPageTables(nCR3: try r.required("ncr3").word())
      if let v = r.optional("hostCR4") { n.hostCR4 = try v.word() }
      if let v = r.optional("hostEFER") { n.hostEFER = try v.word() }
      if let v = r.optional("physicalAddressBits") {
        n.physicalAddressBits = try v.integer(in: 32...52)
      }
      return .npt(n)
    }
  }

  private static func decodeShadow(_ r: JSONReader, guest: GuestRegisters) throws(FormatError)
    -> ShadowPaging
  {
    _ = try r.object(allowing: ["cr3", "cr0", "cr4", "efer", "unsyncTables"])
    let unsync = try r.optional("unsyncTables").map { list throws(FormatError) in
      try list.array().map { item throws(FormatError) in try item.word() }
    }
    return ShadowPaging(
      cr3: try r.required("cr3").word(), guest: guest, cr0: try r.optional("cr0")?.word(),
      cr4: try r.optional("cr4")?.word(), efer: try r.optional("efer")?.word(),
      unsyncTables: unsync ?? [])
  }

  private static func decodeRanges(_ r: JSONReader) throws(FormatError) -> [HostRange] {
    try r.array().map { item throws(FormatError) in
      _ = try item.object(allowing: ["base", "size"])
      let range = HostRange(
        base: try item.required("base").word(), size: try item.required("size").word())
      guard range.size > 0, range.base <= UInt64.max - (range.size - 1) else {
        throw item.error("range is empty or runs past the end of the address space")
      }
      return range
    }
  }

  private static func decodeMemory(_ r: JSONReader) throws(FormatError) -> PhysicalMemory {
    var memory = PhysicalMemory()
    guard case .object(let members) = r.json.value else {
      throw r.error("expected an object mapping addresses to 64-bit words")
    }
    var spelled: [UInt64: String] = [:]  // each address's key, to refuse a second spelling
    for member in members {
      let field = JSONReader(member.value, file: r.file, path: "memory[\"\(member.key)\"]")
      guard let address = parseWord(member.key) else {
        throw field.error(
          isWellFormedNumber(member.key)
            ? "address is wider than 64 bits" : "expected an address such as \"0x1000\"")
      }
      guard address & 7 == 0 else { throw field.error("address is not 8-byte aligned") }
      guard address < physicalAddressLimit else {
        throw field.error("address is beyond the 52-bit physical address space")
      }
      if let earlier = spelled.updateValue(member.key, forKey: address) {
        throw field.error("address \(hex(address)) is already given as \"\(earlier)\"")
      }
      memory[address] = try field.word()
    }
    return memory
  }

  /// The snapshot as JSON, with memory words in ascending address order.
  public var json: JSON {
    var members: [(key: String, value: JSON)] = [
      ("format", .string(Self.formatName)),
      ("version", .integer(Self.formatVersion)),
      (
        "processor",
        .object([
          "vendor": .string(processor.vendor.rawValue),
          "physicalAddressBits": .integer(processor.physicalAddressBits),
          "gigabytePages": .bool(processor.gigabytePages),
        ])
      ),
      (
        "guest",
        .object([
          "cr0": .hex(guest.cr0), "cr3": .hex(guest.cr3), "cr4": .hex(guest.cr4),
          "efer": .hex(guest.efer), "rflags": .hex(guest.rflags), "pkru": .hex(guest.pkru),
          "pkrs": .hex(guest.pkrs),
        ])
      ),
    ]
    switch nested {
    case .none:
      members.append(("nested", .object(["kind": .string("none")])))
    case .ept(let e):
      members.append(
        (
          "nested",
          .object([
            "kind": .string("ept"), "eptp": .hex(e.eptp),
            "physicalAddressBits": .integer(e.physicalAddressBits),
            "executeOnly": .bool(e.executeOnly), "gigabytePages": .bool(e.gigabytePages),
            "modeBasedExecute": .bool(e.modeBasedExecute),
          ])
        ))
    case .npt(let n):
      members.append(
        (
          "nested",
          .object([
            "kind": .string("npt"), "ncr3": .hex(n.nCR3), "hostCR4": .hex(n.hostCR4),
            "hostEFER": .hex(n.hostEFER), "physicalAddressBits": .integer(n.physicalAddressBits),
          ])
        ))
    }
    if let shadow {
      members.append(
        (
          "shadow",
          .object([
            "cr3": .hex(shadow.cr3), "cr0": .hex(shadow.cr0), "cr4": .hex(shadow.cr4),
            "efer": .hex(shadow.efer), "unsyncTables": .array(shadow.unsyncTables.map(JSON.hex)),
          ])
        ))
    }
    if !hostRanges.isEmpty {
      members.append(
        (
          "hostRanges",
          .array(hostRanges.map { .object(["base": .hex($0.base), "size": .hex($0.size)]) })
        ))
    }
    let words = memory.words.sorted { $0.key < $1.key }
    members.append(("memory", .object(words.map { (key: hex($0.key), value: .hex($0.value)) })))
    return .object(members)
  }
}
