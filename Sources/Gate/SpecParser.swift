import FastMMU
import Machine
import Yams

extension Spec {
  /// The version of the spec format this nestcheck reads (`nestcheck-spec: 1`).
  public static let formatVersion = 1

  /// Reads a spec from YAML text; `file` names it in errors and in reports.
  ///
  /// Checks every field on its own (types, units, alignment, known names) and the rules that
  /// tie fields of one spec together without building anything: which checks the spec runs,
  /// and that its expected verdict names them. Whether the mappings fit together is checked when
  /// the spec is built (``StateBuilder``). Every problem is a ``FormatError`` with the file, the
  /// line and column, and the field.
  public static func parse(yaml text: String, file: String) throws(FormatError) -> Spec {
    try SpecParser(file: file).parse(text)
  }
}

/// The reader of the spec format (docs/spec-format.md), field by field.
struct SpecParser {
  let file: String

  static let topLevelFields = [
    "nestcheck-spec", "name", "description", "processor", "guest", "nested", "guest-mappings",
    "host-mappings", "raw-entries", "host-ranges", "shadow", "properties", "proof-budget", "fuzz",
    "expect",
  ]

  /// The largest number of elements a list may hold: a bound on the work one file can ask for.
  static let listLimit = 65_536

  func parse(_ text: String) throws(FormatError) -> Spec {
    let root = try compose(text)
    // The version first: a spec written for another version should be told so, not be
    // refused for fields this version does not know.
    guard case .mapping(let rootMapping) = root.node else {
      throw root.error("a spec is a mapping of fields, starting with nestcheck-spec: 1")
    }
    guard let versionNode = rootMapping["nestcheck-spec"] else {
      throw root.error(
        "missing field \"nestcheck-spec\" (a spec starts with nestcheck-spec: \(Spec.formatVersion))"
      )
    }
    let versionReader = YAMLReader(node: versionNode, path: "nestcheck-spec", file: file)
    let version = try versionReader.word()
    guard version == UInt64(Spec.formatVersion) else {
      throw versionReader.error(
        "unknown spec format version \(version); this nestcheck reads version \(Spec.formatVersion)"
      )
    }

    let top = try root.mapping(allowing: Self.topLevelFields)
    var origins: [String: Origin] = [:]
    for (key, _) in top.members {
      if let reader = top.optional(key) { origins[key] = reader.origin }
    }

    let nameReader = try top.required("name")
    let name = try nameReader.text()
    guard Self.isValidName(name) else {
      throw nameReader.error(
        "\"\(name)\" is not a spec name: use letters, digits, '-', '_' and '.', starting with a "
          + "letter or digit, at most 100 characters")
    }
    // Folded and literal block scalars end with a line break; reports want the text alone.
    var description = try top.optional("description")?.text() ?? ""
    while description.last?.isWhitespace == true { description.removeLast() }

    let processor = try parseProcessor(top.optional("processor"))
    let guest = try parseGuest(try top.required("guest"))
    let nested = try parseNested(top.optional("nested"))
    let guestMappings = try items(top.optional("guest-mappings")).map(parseGuestMapping)
    let hostMappings = try items(top.optional("host-mappings")).map(parseHostMapping)
    let rawEntries = try items(top.optional("raw-entries")).map(parseRawEntry)
    let hostRanges = try items(top.optional("host-ranges")).map(parseHostRange)
    let shadow = try top.optional("shadow").map(parseShadow)
    let properties = try parseProperties(top.optional("properties"))
    let proofBudget = try parseProofBudget(top.optional("proof-budget"))
    let fuzz = try top.optional("fuzz").map(parseFuzz)
    let expectation = try parseExpectation(try top.required("expect"))

    let spec = Spec(
      file: file, name: name, description: description, processor: processor, guest: guest,
      nested: nested, guestMappings: guestMappings, hostMappings: hostMappings,
      rawEntries: rawEntries, hostRanges: hostRanges, shadow: shadow, properties: properties,
      proofBudget: proofBudget, fuzz: fuzz, expectation: expectation, origins: origins)
    try checkPlan(spec, top: top)
    return spec
  }

  /// Spec names: letters, digits, `-`, `_`, `.`; a letter or digit first; at most 100.
  static func isValidName(_ name: String) -> Bool {
    guard let first = name.unicodeScalars.first, name.unicodeScalars.count <= 100 else {
      return false
    }
    func isAlphanumeric(_ s: Unicode.Scalar) -> Bool {
      ("a"..."z").contains(s) || ("A"..."Z").contains(s) || ("0"..."9").contains(s)
    }
    return isAlphanumeric(first)
      && name.unicodeScalars.allSatisfy { isAlphanumeric($0) || "-_.".unicodeScalars.contains($0) }
  }

  // MARK: - The document

  /// Composes the YAML text into a node tree, turning Yams' errors into ``FormatError``s.
  func compose(_ text: String) throws(FormatError) -> YAMLReader {
    let node: Node?
    do {
      node = try Yams.compose(yaml: text, .default, .default, .utf8)
    } catch let error as YamlError {
      throw formatError(error)
    } catch {
      throw FormatError(file: file, field: "", message: "malformed YAML: \(error)")
    }
    guard let node else {
      throw FormatError(
        file: file, field: "",
        message: "empty document (a spec starts with nestcheck-spec: \(Spec.formatVersion))")
    }
    return YAMLReader(node: node, path: "", file: file)
  }

  func formatError(_ error: YamlError) -> FormatError {
    func at(_ mark: Mark, _ message: String, field: String = "") -> FormatError {
      FormatError(file: file, position: SourcePosition(mark), field: field, message: message)
    }
    switch error {
    case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _):
      return at(mark, "malformed YAML: \(problem)")
    case .composer(_, let problem, let mark, _):
      return at(mark, "malformed YAML: \(problem)")
    case .duplicatedKeysInMapping(let duplicates, let context):
      let key = duplicates.first ?? ""
      return at(context.mark, "field given twice in one mapping (the first is here)", field: key)
    case .reader(let problem, _, _, _):
      return FormatError(file: file, field: "", message: "not readable as YAML: \(problem)")
    default:
      return FormatError(file: file, field: "", message: "malformed YAML: \(error)")
    }
  }

  /// The elements of an optional list field, bounded in number.
  func items(_ reader: YAMLReader?) throws(FormatError) -> [YAMLReader] {
    guard let reader, !reader.isNull else { return [] }
    let list = try reader.list()
    guard list.count <= Self.listLimit else {
      throw reader.error("\(list.count) elements; a list holds at most \(Self.listLimit)")
    }
    return list
  }

  // MARK: - Machine

  func parseProcessor(_ reader: YAMLReader?) throws(FormatError) -> ProcessorSpec {
    guard let reader else {
      return ProcessorSpec(vendor: nil, physicalAddressBits: 46, gigabytePages: true)
    }
    let m = try reader.mapping(allowing: ["vendor", "physical-address-bits", "gigabyte-pages"])
    return ProcessorSpec(
      vendor: try m.optional("vendor")?.choice(Vendor.self),
      physicalAddressBits: try m.optional("physical-address-bits")?.integer(in: 32...52) ?? 46,
      gigabytePages: try m.optional("gigabyte-pages")?.bool() ?? true)
  }

  func parseGuest(_ reader: YAMLReader) throws(FormatError) -> GuestSpec {
    let m = try reader.mapping(allowing: [
      "paging", "cr0", "cr4", "efer", "rflags", "pkru", "pkrs", "pcid", "table-area",
    ])
    var origins = Origins(item: reader.origin)
    for key in ["paging", "cr0", "cr4", "efer", "table-area", "pcid"] {
      if let field = m.optional(key) { origins.fields[key] = field.origin }
    }
    return GuestSpec(
      paging: try m.required("paging").choice(GuestPaging.self),
      cr0: try m.optional("cr0")?.register(ControlFlags.cr0),
      cr4: try m.optional("cr4")?.register(ControlFlags.cr4),
      efer: try m.optional("efer")?.register(ControlFlags.efer),
      rflags: try m.optional("rflags")?.register(ControlFlags.rflags) ?? 0x2,
      pkru: try key32(m.optional("pkru")),
      pkrs: try key32(m.optional("pkrs")),
      pcid: UInt64(try m.optional("pcid")?.integer(in: 0...4095) ?? 0),
      tableArea: try m.optional("table-area").map(frameAddress),
      origins: origins)
  }

  /// PKRU or PKRS: 32 bits.
  func key32(_ reader: YAMLReader?) throws(FormatError) -> UInt64 {
    guard let reader else { return 0 }
    let value = try reader.word()
    guard value <= 0xFFFF_FFFF else {
      throw reader.error("a 32-bit register; \(hex(value)) is wider")
    }
    return value
  }

  /// A 4-KiB-aligned address.
  func frameAddress(_ reader: YAMLReader) throws(FormatError) -> UInt64 {
    let value = try reader.word()
    guard value & 0xFFF == 0 else {
      throw reader.error("\(hex(value)) is not 4-KiB aligned (tables are 4-KiB frames)")
    }
    return value
  }

  /// Nested kinds.
  enum NestedKind: String, CaseIterable {
    case none, ept, npt
  }

  func parseNested(_ reader: YAMLReader?) throws(FormatError) -> NestedSpec {
    guard let reader else { return .none }
    guard case .mapping(let raw) = reader.node else {
      throw reader.error("expected a mapping of fields, got \(reader.kindDescription)")
    }
    guard let kindNode = raw["kind"] else {
      throw reader.error("missing field \"kind\" (none, ept or npt)")
    }
    let kind = try YAMLReader(node: kindNode, path: reader.childPath("kind"), file: file)
      .choice(NestedKind.self)
    switch kind {
    case .none:
      _ = try reader.mapping(allowing: ["kind"])
      return .none
    case .ept:
      let m = try reader.mapping(allowing: [
        "kind", "levels", "accessed-dirty", "execute-only", "gigabyte-pages", "mode-based-execute",
        "physical-address-bits", "memory-type", "table-area",
      ])
      let typeReader = m.optional("memory-type")
      let type = try typeReader?.choice(EPTMemoryType.self) ?? .wb
      if let typeReader, type != .uc && type != .wb {
        throw typeReader.error(
          "the EPT pointer's memory type is uc or wb; VM entry fails with others (SEMANTICS §2.1)")
      }
      return .ept(
        EPTSpec(
          levels: try levels(m.optional("levels")),
          accessedDirty: try m.optional("accessed-dirty")?.bool() ?? false,
          executeOnly: try m.optional("execute-only")?.bool() ?? true,
          gigabytePages: try m.optional("gigabyte-pages")?.bool() ?? true,
          modeBasedExecute: try m.optional("mode-based-execute")?.bool() ?? false,
          physicalAddressBits: try m.optional("physical-address-bits")?.integer(in: 32...52) ?? 46,
          pagingStructureType: type,
          tableArea: try m.optional("table-area").map(frameAddress),
          origins: fieldOrigins(reader, m)))
    case .npt:
      let m = try reader.mapping(allowing: [
        "kind", "levels", "host-cr4", "host-efer", "physical-address-bits", "table-area",
      ])
      let hostCR4Reader = m.optional("host-cr4")
      let hostCR4 = try hostCR4Reader?.register(ControlFlags.cr4)
      var levels = try self.levels(m.optional("levels"))
      if let hostCR4 {
        let fromCR4 = hostCR4 & ControlFlags.fiveLevel != 0 ? 5 : 4
        if let given = m.optional("levels"), fromCR4 != levels {
          throw given.error(
            "levels \(levels) contradicts host-cr4, whose LA57 gives \(fromCR4)-level nested tables"
          )
        }
        levels = fromCR4
      }
      return .npt(
        NPTSpec(
          levels: levels,
          hostCR4: hostCR4
            ?? (ControlFlags.physicalAddressExtension | (levels == 5 ? ControlFlags.fiveLevel : 0)),
          hostEFER: try m.optional("host-efer")?.register(ControlFlags.efer) ?? 0xD00,
          physicalAddressBits: try m.optional("physical-address-bits")?.integer(in: 32...52) ?? 48,
          tableArea: try m.optional("table-area").map(frameAddress),
          origins: fieldOrigins(reader, m)))
    }
  }

  func levels(_ reader: YAMLReader?) throws(FormatError) -> Int {
    guard let reader else { return 4 }
    let value = try reader.word()
    guard value == 4 || value == 5 else {
      throw reader.error("nested tables have 4 or 5 levels, not \(value)")
    }
    return Int(value)
  }

  func fieldOrigins(_ reader: YAMLReader, _ m: YAMLMapping) -> Origins {
    var origins = Origins(item: reader.origin)
    for (key, _) in m.members {
      if let field = m.optional(key) { origins.fields[key] = field.origin }
    }
    return origins
  }

  // MARK: - Mappings

  /// The fields every kind of mapping has.
  struct CommonMapping {
    var m: YAMLMapping
    var source: UInt64
    var target: UInt64
    var size: UInt64
    var page: PageSize
    var rights: Set<Right>
    var accessed: Bool
    var dirty: Bool
    var origins: Origins
  }

  /// Reads the common fields of a mapping from `source` (gva or gpa) to `target` (gpa or hpa).
  func parseMapping(
    _ reader: YAMLReader, source: String, target: String, extra: [String], rights allowed: [Right]
  ) throws(FormatError) -> CommonMapping {
    let m = try reader.mapping(
      allowing: [source, target, "size", "page", "rights", "accessed", "dirty"] + extra)
    let origins = fieldOrigins(reader, m)
    let sourceReader = try m.required(source)
    let sourceAddress = try sourceReader.word()
    let targetReader = try m.required(target)
    let targetAddress = try targetReader.word()

    var page = PageSize.small
    if let pageReader = m.optional("page") {
      let bytes = try pageReader.size()
      guard let size = PageSize(rawValue: bytes) else {
        throw pageReader.error(
          "a page is 4 KiB, 2 MiB or 1 GiB, not \(Quantity.describeSize(bytes))")
      }
      page = size
    }
    var size = page.rawValue
    if let sizeReader = m.optional("size") {
      size = try sizeReader.size()
      guard size > 0 else { throw sizeReader.error("the size is zero") }
      guard size % page.rawValue == 0 else {
        throw sizeReader.error(
          "\(Quantity.describeSize(size)) is not a whole number of \(page.name) pages")
      }
    }
    guard sourceAddress % page.rawValue == 0 else {
      throw sourceReader.error("\(hex(sourceAddress)) is not aligned to its \(page.name) page")
    }
    guard targetAddress % page.rawValue == 0 else {
      throw targetReader.error("\(hex(targetAddress)) is not aligned to its \(page.name) page")
    }
    guard sourceAddress <= UInt64.max - (size - 1) else {
      throw sourceReader.error("the mapping runs past the end of the 64-bit address space")
    }
    guard targetAddress <= UInt64.max - (size - 1) else {
      throw targetReader.error("the mapping runs past the end of the 64-bit address space")
    }
    return CommonMapping(
      m: m, source: sourceAddress, target: targetAddress, size: size, page: page,
      rights: try self.rights(try m.required("rights"), allowed: allowed),
      accessed: try m.optional("accessed")?.bool() ?? false,
      dirty: try m.optional("dirty")?.bool() ?? false,
      origins: origins)
  }

  /// A list of rights, each allowed and given once.
  func rights(_ reader: YAMLReader, allowed: [Right]) throws(FormatError) -> Set<Right> {
    var rights: Set<Right> = []
    for item in try reader.list() {
      let name = try item.text()
      guard let right = Right(rawValue: name), allowed.contains(right) else {
        throw item.error(
          unknownValueMessage(name, allowed: allowed.map(\.rawValue), what: "right"))
      }
      guard rights.insert(right).inserted else { throw item.error("\(name) is listed twice") }
    }
    return rights
  }

  /// A protection key: 0 to 15.
  func protectionKey(_ m: YAMLMapping) throws(FormatError) -> UInt64 {
    UInt64(try m.optional("key")?.integer(in: 0...15) ?? 0)
  }

  func parseGuestMapping(_ reader: YAMLReader) throws(FormatError) -> GuestMapping {
    let c = try parseMapping(
      reader, source: "gva", target: "gpa", extra: ["global", "key", "backed"],
      rights: [.read, .write, .user, .exec])
    return GuestMapping(
      gva: c.source, gpa: c.target, size: c.size, page: c.page, rights: c.rights,
      accessed: c.accessed, dirty: c.dirty, global: try c.m.optional("global")?.bool() ?? false,
      key: try protectionKey(c.m), backed: try c.m.optional("backed")?.bool(), origins: c.origins)
  }

  func parseHostMapping(_ reader: YAMLReader) throws(FormatError) -> HostMapping {
    let c = try parseMapping(
      reader, source: "gpa", target: "hpa", extra: ["memory-type"],
      rights: [.read, .write, .exec, .userExec])
    return HostMapping(
      gpa: c.source, hpa: c.target, size: c.size, page: c.page, rights: c.rights,
      accessed: c.accessed, dirty: c.dirty,
      memoryType: try c.m.optional("memory-type")?.choice(EPTMemoryType.self) ?? .wb,
      origins: c.origins)
  }

  func parseShadowMapping(_ reader: YAMLReader) throws(FormatError) -> ShadowMapping {
    let c = try parseMapping(
      reader, source: "gva", target: "hpa", extra: ["global", "key"],
      rights: [.read, .write, .user, .exec])
    return ShadowMapping(
      gva: c.source, hpa: c.target, size: c.size, page: c.page, rights: c.rights,
      accessed: c.accessed, dirty: c.dirty, global: try c.m.optional("global")?.bool() ?? false,
      key: try protectionKey(c.m), origins: c.origins)
  }

  func parseRawEntry(_ reader: YAMLReader) throws(FormatError) -> RawEntry {
    let m = try reader.mapping(allowing: ["table", "gva", "gpa", "level", "value", "points-to"])
    let table = try m.required("table").choice(TableKind.self)
    let field = table.addressField
    let other = field == "gva" ? "gpa" : "gva"
    if let wrong = m.optional(other) {
      throw wrong.error("a \(table.rawValue) table entry is named by \(field), not \(other)")
    }
    let level = try m.required("level").integer(in: 1...5)
    let pointsTo = try m.optional("points-to").map { (r) throws(FormatError) in
      try tableReference(r, field: field)
    }
    return RawEntry(
      table: table, address: try m.required(field).word(), level: level,
      value: try m.required("value").word(), pointsTo: pointsTo,
      origins: fieldOrigins(reader, m))
  }

  /// `root`, or `{ gva: ADDRESS, level: N }` (`gpa` for nested tables).
  func tableReference(_ reader: YAMLReader, field: String) throws(FormatError) -> TableReference {
    if case .scalar = reader.node {
      guard try reader.text() == "root" else {
        throw reader.error(
          "expected root, or { \(field): ADDRESS, level: N } for the table at level N on the walk "
            + "of ADDRESS")
      }
      return .root
    }
    let m = try reader.mapping(allowing: [field, "level"])
    return .table(
      address: try m.required(field).word(), level: try m.required("level").integer(in: 1...5))
  }

  func parseHostRange(_ reader: YAMLReader) throws(FormatError) -> Located<AddressRange> {
    let m = try reader.mapping(allowing: ["base", "size"])
    let base = try m.required("base").word()
    let sizeReader = try m.required("size")
    let size = try sizeReader.size()
    guard size > 0 else { throw sizeReader.error("the range is empty") }
    guard base <= UInt64.max - (size - 1) else {
      throw sizeReader.error("the range runs past the end of the 64-bit address space")
    }
    return Located(value: AddressRange(lower: base, size: size), origin: reader.origin)
  }

  // MARK: - Shadow

  func parseShadow(_ reader: YAMLReader) throws(FormatError) -> ShadowSpec {
    let builtBy: YAMLMapping
    if case .mapping(let raw) = reader.node, raw["built-by"] != nil {
      builtBy = try reader.mapping(allowing: ["built-by", "mode", "write-policy", "operations"])
    } else {
      let m = try reader.mapping(allowing: [
        "mappings", "table-area", "cr0", "cr4", "efer", "unsync",
      ])
      return .raw(
        RawShadow(
          mappings: try items(m.optional("mappings")).map(parseShadowMapping),
          tableArea: try m.optional("table-area").map(frameAddress),
          cr0: try m.optional("cr0")?.register(ControlFlags.cr0),
          cr4: try m.optional("cr4")?.register(ControlFlags.cr4),
          efer: try m.optional("efer")?.register(ControlFlags.efer),
          unsync: try items(m.optional("unsync")).map(parseUnsync),
          origins: fieldOrigins(reader, m)))
    }
    let engineReader = try builtBy.required("built-by")
    guard try engineReader.text() == "fast-mmu" else {
      throw engineReader.error(
        unknownValueMessage(try engineReader.text(), allowed: ["fast-mmu"]))
    }
    let modeReader = try builtBy.required("mode")
    let mode = try modeReader.choice(MMUMode.self)
    guard mode != .nested else {
      throw modeReader.error(
        "the nested mode keeps no shadow tables; build with shadow or paravirtual "
          + "(fuzz: { modes: [nested] } checks the nested mode)")
    }
    let policyReader = builtBy.optional("write-policy")
    let policy = try policyReader?.choice(ShadowWritePolicy.self)
    if let policyReader, mode != .shadow {
      throw policyReader.error("write-policy applies to the shadow mode only")
    }
    var operations: [TraceOperation] = []
    for item in try items(builtBy.optional("operations")) {
      operations.append(
        try TraceOperation.decode(JSONReader(try item.json(), file: file, path: item.path)))
    }
    return .fastMMU(
      Located(
        value: ShadowRecipe(mode: mode, writePolicy: policy, operations: operations),
        origin: reader.origin))
  }

  /// An unsync table: a guest physical address, or `{ gva: ADDRESS, level: N }`.
  func parseUnsync(_ reader: YAMLReader) throws(FormatError) -> Located<UnsyncTable> {
    if case .scalar = reader.node {
      return Located(value: .address(try frameAddress(reader)), origin: reader.origin)
    }
    let m = try reader.mapping(allowing: ["gva", "level"])
    return Located(
      value: .table(
        gva: try m.required("gva").word(), level: try m.optional("level")?.integer(in: 1...5) ?? 1),
      origin: reader.origin)
  }

  // MARK: - Checks

  func parseProperties(_ reader: YAMLReader?) throws(FormatError) -> [Property] {
    var properties: [Property] = []
    for item in try items(reader) {
      let property = try item.choice(Property.self)
      guard !properties.contains(property) else {
        throw item.error("\(property.rawValue) is listed twice")
      }
      properties.append(property)
    }
    return properties
  }

  func parseProofBudget(_ reader: YAMLReader?) throws(FormatError) -> ProofBudget {
    guard let reader else { return ProofBudget() }
    let m = try reader.mapping(allowing: ["time", "resource-limit"])
    var resourceLimit: UInt64?
    if let limitReader = m.optional("resource-limit") {
      let limit = try limitReader.word()
      guard limit > 0, limit <= UInt64(UInt32.max) else {
        throw limitReader.error("Z3's resource limit is a number from 1 to 4294967295")
      }
      resourceLimit = limit
    }
    return ProofBudget(time: try m.optional("time")?.duration(), resourceLimit: resourceLimit)
  }

  func parseFuzz(_ reader: YAMLReader) throws(FormatError) -> FuzzPlan {
    let m = try reader.mapping(allowing: ["modes", "operations", "seed", "time-budget"])
    let modesReader = try m.required("modes")
    var modes: [MMUMode] = []
    for item in try modesReader.list() {
      let mode = try item.choice(MMUMode.self)
      guard !modes.contains(mode) else { throw item.error("\(mode.rawValue) is listed twice") }
      modes.append(mode)
    }
    guard !modes.isEmpty else {
      throw modesReader.error("no modes (nested, shadow, paravirtual): nothing to fuzz")
    }
    let operationsReader = try m.required("operations")
    let operations = try operationsReader.word()
    guard operations > 0 else { throw operationsReader.error("zero operations: nothing to fuzz") }
    return FuzzPlan(
      modes: modes,
      budget: FuzzBudget(
        seed: try m.optional("seed")?.word() ?? 1, operations: operations,
        time: try m.optional("time-budget")?.duration()))
  }

  func parseExpectation(_ reader: YAMLReader) throws(FormatError) -> Expectation {
    if case .scalar = reader.node {
      let text = try reader.text()
      guard text == "holds" else {
        throw reader.error(
          "expected holds, or { violated: CHECK } naming the check that must fail, got \"\(text)\"")
      }
      return .holds
    }
    let m = try reader.mapping(allowing: ["violated"])
    var names: [String] = []
    for item in try m.required("violated").oneOrMore() {
      let name = try item.text()
      guard !names.contains(name) else { throw item.error("\(name) is listed twice") }
      names.append(name)
    }
    guard !names.isEmpty else {
      throw reader.error("violated names no check; write expect: holds if every check must hold")
    }
    return .violated(names)
  }

  /// The rules about which checks a spec runs: at least one; shadow properties need a shadow;
  /// isolation needs host ranges; the expected verdict names checks the spec runs.
  func checkPlan(_ spec: Spec, top: YAMLMapping) throws(FormatError) {
    let checks = spec.checkNames
    guard !checks.isEmpty else {
      throw spec.origin("expect").error(
        "the spec checks nothing: give properties to prove, or a fuzz campaign", file: file)
    }
    if spec.shadow == nil, let property = spec.properties.first(where: \.needsShadow) {
      throw propertyOrigin(property, top).error(
        "\(property.rawValue) is about a shadow, and this spec has none (add shadow:)",
        file: file)
    }
    if spec.properties.contains(.isolation) && spec.hostRanges.isEmpty {
      throw propertyOrigin(.isolation, top).error(
        "isolation needs host-ranges: the host memory the guest may reach", file: file)
    }
    if case .violated(let names) = spec.expectation {
      let items = top.optional("expect")?.looseMapping.flatMap {
        $0.optional("violated")?.oneOrMore()
      }
      for (index, name) in names.enumerated() where !checks.contains(name) {
        let origin = items.flatMap { index < $0.count ? $0[index].origin : nil }
        throw (origin ?? spec.origin("expect")).error(
          "\(name) is not a check of this spec (its checks: \(checks.joined(separator: ", ")))",
          file: file)
      }
    }
  }

  func propertyOrigin(_ property: Property, _ top: YAMLMapping) -> Origin {
    let list = top.optional("properties")
    let item = list.flatMap { try? $0.list() }?.first { (try? $0.text()) == property.rawValue }
    return item?.origin ?? list?.origin ?? Origin(position: nil, field: "properties")
  }
}

extension YAMLReader {
  /// This value's fields when it is a mapping (no check of the keys), else `nil`.
  var looseMapping: YAMLMapping? {
    guard case .mapping(let raw) = node else { return nil }
    return YAMLMapping(
      reader: self, members: raw.compactMap { pair in pair.key.string.map { ($0, pair.value) } })
  }
}

extension Spec {
  /// The names of the checks the spec runs, in order: its properties, then `fuzz-MODE` for each
  /// fuzzed mode.
  public var checkNames: [String] {
    properties.map(\.rawValue) + (fuzz?.modes ?? []).map { "fuzz-" + $0.rawValue }
  }
}
