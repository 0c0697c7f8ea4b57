import FastMMU
import Machine
import ReferenceModel
import Workloads

/// A spec built: the machine state its checks run on, the fast-MMU recipe for its shadow when
/// the fast MMU is to build it, and the checks with their expected verdicts.
public struct BuiltSpec: Sendable {
  /// The spec.
  public var spec: Spec
  /// The machine: registers, nested configuration, host ranges, and memory holding the guest's
  /// tables (at the host addresses backing them), the nested tables and, for a raw shadow, the
  /// shadow tables with ``MachineState/shadow`` set.
  public var state: MachineState
  /// How the fast MMU is to build the shadow from ``state``, when the spec asks for that.
  public var shadowRecipe: ShadowRecipe?
  /// The checks, in the spec's order.
  public var checks: [PlannedCheck]
  /// Where the builder put each table.
  public var layout: TableLayout
}

/// Where the builder placed the tables.
public struct TableLayout: Hashable, Sendable {
  /// A guest table's guest physical address and the host physical address backing it.
  public struct GuestTable: Hashable, Sendable {
    /// Its guest physical address.
    public var guestPhysical: UInt64
    /// Its host physical address.
    public var hostPhysical: UInt64
  }

  /// The guest's tables, the root first.
  public var guestTables: [GuestTable] = []
  /// The nested tables' host physical addresses, the root first.
  public var nestedTables: [UInt64] = []
  /// The raw shadow's tables' host physical addresses, the root first.
  public var shadowTables: [UInt64] = []
}

/// One check of a built spec: what to run and the verdict it must come to.
public struct PlannedCheck: Hashable, Sendable {
  /// The check's name in reports: the property's name, or `fuzz-MODE`.
  public var name: String
  /// What the check runs.
  public var kind: CheckKind
  /// The verdict the spec expects.
  public var expected: ExpectedVerdict
}

/// What a check runs.
public enum CheckKind: Hashable, Sendable {
  /// Prove a property of the state (the prover, issue 3).
  case property(Property)
  /// Fuzz a fast-MMU mode from the state against the oracle (the fuzzer, issue 5).
  case fuzz(MMUMode)

  /// `property` or `fuzz`, for reports.
  public var category: String {
    switch self {
    case .property: "property"
    case .fuzz: "fuzz"
    }
  }
}

/// The verdict a spec expects of one check.
public enum ExpectedVerdict: String, Hashable, Sendable {
  /// The property holds, or the campaign finds no divergence.
  case holds
  /// The property is violated (a negative spec).
  case violated
}

extension Spec {
  /// Builds the spec: lays out every table, checks that the parts fit together, and lists the
  /// checks. Every problem is a ``FormatError`` naming the field it is about, at its position.
  public func build() throws(FormatError) -> BuiltSpec {
    try StateBuilder(spec: self).build()
  }
}

/// Turns a ``Spec`` into a ``BuiltSpec``: the rules of docs/spec-format.md that tie fields
/// together ("how a spec becomes a state"), applied in the order that document gives.
struct StateBuilder {
  let spec: Spec

  /// The most leaves (pages) one spec may map, over all its mappings.
  static let leafLimit: UInt64 = 1 << 22

  var file: String { spec.file }

  func fail(_ origin: Origin, _ message: String) -> FormatError {
    origin.error(message, file: file)
  }

  // MARK: - The whole

  func build() throws(FormatError) -> BuiltSpec {
    try checkLeafCount()
    let machine = try MachineSetup(spec)
    try checkGuestMappings(machine)
    try checkHostMappings(machine)
    try checkShadow(machine)
    try checkHostRanges()

    var layout = TableLayout()
    var memory = PhysicalMemory()
    var frames = FrameOwners()

    // The guest's tables, in guest physical space, then placed where the host backs them.
    var guestRoot: UInt64 = 0
    var guestTree: TableTree?
    if machine.guestLevels > 0 {
      let tree = try buildGuestTables(machine)
      guestTree = tree
      guestRoot = tree.root
      var hostOfTable: [UInt64: UInt64] = [:]
      for table in tree.tables {
        let host = try hostAddress(ofGuestTable: table, machine)
        hostOfTable[table] = host
        layout.guestTables.append(.init(guestPhysical: table, hostPhysical: host))
        try frames.claim(
          host, "the guest table at guest physical \(hex(table))",
          origin: spec.guest.origins["table-area"], file: file)
      }
      for (address, value) in tree.words where value != 0 {
        let table = address & ~0xFFF
        memory[(hostOfTable[table] ?? table) | (address & 0xFFF)] = value
      }
    }

    // The nested tables.
    var nestedRoot: UInt64 = 0
    if machine.nestedLevels > 0, let origins = spec.nested.origins {
      let tree = try buildNestedTables(machine, guestTables: layout.guestTables)
      nestedRoot = tree.root
      layout.nestedTables = tree.tables
      for table in tree.tables {
        try frames.claim(table, "a nested table", origin: origins["table-area"], file: file)
      }
      for (address, value) in tree.words where value != 0 { memory[address] = value }
    }

    // A raw shadow's tables.
    var shadow: ShadowPaging?
    var recipe: ShadowRecipe?
    let registers = machine.guestRegisters(root: guestRoot)
    switch spec.shadow {
    case nil:
      break
    case .fastMMU(let located):
      recipe = located.value
    case .raw(let raw):
      let tree = try buildShadowTables(raw, machine, layout: layout)
      layout.shadowTables = tree.tables
      for table in tree.tables {
        try frames.claim(table, "a shadow table", origin: raw.origins["table-area"], file: file)
      }
      for (address, value) in tree.words where value != 0 { memory[address] = value }
      shadow = ShadowPaging(
        cr3: tree.root, guest: registers, cr0: raw.cr0, cr4: raw.cr4, efer: raw.efer,
        unsyncTables: try unsyncFrames(raw, guestTree))
    }

    let state = MachineState(
      processor: machine.processor, guest: registers,
      nested: machine.nestedPaging(root: nestedRoot), shadow: shadow, memory: memory,
      hostRanges: spec.hostRanges.map { HostRange(base: $0.value.lower, size: $0.value.size) })
    do {
      _ = try ConcreteModel(state, file: file)
    } catch {
      throw fail(
        spec.origin("guest"),
        "the reference model refuses the machine this spec describes: \(error.field): "
          + error.message)
    }
    return BuiltSpec(
      spec: spec, state: state, shadowRecipe: recipe, checks: plannedChecks(), layout: layout)
  }

  func plannedChecks() -> [PlannedCheck] {
    var violated: Set<String> = []
    if case .violated(let names) = spec.expectation { violated = Set(names) }
    func expected(_ name: String) -> ExpectedVerdict {
      violated.contains(name) ? .violated : .holds
    }
    let properties = spec.properties.map {
      PlannedCheck(name: $0.rawValue, kind: .property($0), expected: expected($0.rawValue))
    }
    let fuzz = (spec.fuzz?.modes ?? []).map {
      PlannedCheck(
        name: "fuzz-" + $0.rawValue, kind: .fuzz($0),
        expected: expected("fuzz-" + $0.rawValue))
    }
    return properties + fuzz
  }

  // MARK: - Mappings on their own

  func checkGuestMappings(_ machine: MachineSetup) throws(FormatError) {
    let mappings = spec.guestMappings
    if machine.guestLevels == 0, let first = mappings.first {
      throw fail(first.origins.item, "guest mappings need guest paging (guest.paging is off)")
    }
    for m in mappings {
      try checkCanonical(
        m.gva, size: m.size, levels: machine.guestLevels, origin: m.origins["gva"])
      if m.gpa > machine.guestPhysicalLimit - m.size {
        throw fail(
          m.origins["gpa"],
          "the mapping reaches past MAXPHYADDR (\(machine.processor.physicalAddressBits) bits, "
            + "processor.physical-address-bits): a guest entry cannot hold that frame "
            + "(use raw-entries for a reserved-bit fault)")
      }
      if m.page == .huge && !machine.processor.gigabytePages {
        throw fail(
          m.origins["page"], "1 GiB pages need processor.gigabyte-pages: true")
      }
      if !m.rights.contains(.exec) && !machine.guestNoExecute {
        throw fail(
          m.origins["rights"],
          "without exec the entry needs XD, but the guest's EFER.NXE is off (XD would be a "
            + "reserved bit): add exec, or NXE to guest.efer")
      }
      if m.backed != nil && machine.nestedLevels == 0 {
        throw fail(m.origins["backed"], "backed applies only with nested paging")
      }
    }
    if let (later, earlier) = firstOverlap(
      mappings.map { AddressRange(lower: $0.gva, size: $0.size) })
    {
      let other = mappings[earlier]
      throw fail(
        mappings[later].origins["gva"],
        "overlaps guest-mappings[\(earlier)] (gva \(AddressRange(lower: other.gva, size: other.size)))"
      )
    }
    // Whether the nested dimension backs each mapping, as the spec says it does.
    guard machine.nestedLevels > 0 else { return }
    let backed = backedGuestPhysical()
    for m in mappings {
      let range = AddressRange(lower: m.gpa, size: m.size)
      if m.backed ?? true {
        if let missing = backed.firstMissing(in: range) {
          throw fail(
            m.origins["gpa"],
            "guest physical \(hex(missing)) is not mapped by host-mappings: the nested dimension "
              + "does not back it (map it, or write backed: false if that is the point)")
        }
      } else if let present = backed.firstPresent(in: range) {
        throw fail(
          m.origins["backed"], "backed: false, but host-mappings map guest physical \(hex(present))"
        )
      }
    }
  }

  /// The guest physical addresses the host mappings back.
  func backedGuestPhysical() -> AddressSet {
    var set = AddressSet()
    for m in spec.hostMappings { set.insert(AddressRange(lower: m.gpa, size: m.size)) }
    return set
  }

  func checkHostMappings(_ machine: MachineSetup) throws(FormatError) {
    let mappings = spec.hostMappings
    guard let first = mappings.first else { return }
    guard machine.nestedLevels > 0 else {
      throw fail(first.origins.item, "host mappings need nested paging (nested.kind is none)")
    }
    for m in mappings {
      switch spec.nested {
      case .none:
        break
      case .ept(let ept):
        let read = m.rights.contains(.read)
        let write = m.rights.contains(.write)
        let exec = m.rights.contains(.exec)
        if m.rights.isEmpty {
          throw fail(
            m.origins["rights"],
            "no rights: an EPT entry with R, W and X clear is not present; leave the range "
              + "unmapped instead")
        }
        if write && !read {
          throw fail(
            m.origins["rights"],
            "write without read is an EPT misconfiguration (SEMANTICS §2.3 M1); use raw-entries "
              + "for a deliberate one")
        }
        if exec && !read && !write && !ept.executeOnly {
          throw fail(
            m.origins["rights"],
            "execute-only needs nested.execute-only: true; without it XWR = 100 is a "
              + "misconfiguration (SEMANTICS §2.3 M2)")
        }
        if m.rights.contains(.userExec) && !ept.modeBasedExecute {
          throw fail(
            m.origins["rights"],
            "user-exec (bit 10) needs nested.mode-based-execute: true; without it the bit is "
              + "ignored")
        }
        if m.page == .huge && !ept.gigabytePages {
          throw fail(m.origins["page"], "1 GiB EPT pages need nested.gigabyte-pages: true")
        }
      case .npt(let npt):
        if m.rights.contains(.userExec) {
          throw fail(m.origins["rights"], "user-exec is EPT's (mode-based execute control)")
        }
        if m.origins.fields["memory-type"] != nil {
          throw fail(
            m.origins["memory-type"], "memory-type is EPT's; NPT entries use PAT bits")
        }
        if !m.rights.contains(.exec) && npt.hostEFER & ControlFlags.executeDisableEnable == 0 {
          throw fail(
            m.origins["rights"],
            "without exec the entry needs XD, but nested.host-efer lacks NXE")
        }
      }
      let reach = UInt64(1) << UInt64(12 + 9 * machine.nestedLevels)
      if m.gpa >= reach || m.size > reach - m.gpa {
        throw fail(
          m.origins["gpa"],
          "the mapping reaches past what \(machine.nestedLevels)-level nested tables translate "
            + "(\(hex(reach)))")
      }
      if m.hpa > machine.hostPhysicalLimit - m.size {
        throw fail(
          m.origins["hpa"],
          "the mapping reaches past the host's \(machine.hostAddressBits)-bit physical address "
            + "space")
      }
    }
    if let (later, earlier) = firstOverlap(
      mappings.map { AddressRange(lower: $0.gpa, size: $0.size) })
    {
      let other = mappings[earlier]
      throw fail(
        mappings[later].origins["gpa"],
        "overlaps host-mappings[\(earlier)] (gpa \(AddressRange(lower: other.gpa, size: other.size)))"
      )
    }
  }

  func checkShadow(_ machine: MachineSetup) throws(FormatError) {
    for entry in spec.rawEntries {
      let origin = entry.origins["table"]
      switch entry.table {
      case .guest where machine.guestLevels == 0:
        throw fail(origin, "guest entries need guest paging (guest.paging is off)")
      case .nested where machine.nestedLevels == 0:
        throw fail(origin, "nested entries need nested paging (nested.kind is none)")
      case .shadow:
        guard case .raw = spec.shadow else {
          throw fail(
            origin,
            spec.shadow == nil
              ? "shadow entries need a shadow (this spec has none)"
              : "shadow entries need a shadow given by mappings; this one is built by the fast MMU")
        }
      default:
        break
      }
    }
    guard let shadow = spec.shadow else { return }
    guard machine.guestLevels > 0 else {
      throw fail(spec.origin("shadow"), "a shadow needs guest paging (guest.paging is off)")
    }
    guard case .raw(let raw) = shadow else { return }
    let hardware = ShadowPaging(
      cr3: 0, guest: machine.guestRegisters(root: 0), cr0: raw.cr0, cr4: raw.cr4, efer: raw.efer)
    let modeProblem: (field: String, message: String)? =
      if hardware.cr0 & ControlFlags.paging == 0 {
        ("cr0", "the hardware walks the shadow with paging on: CR0.PG must be set")
      } else if hardware.cr4 & ControlFlags.physicalAddressExtension == 0 {
        ("cr4", "the shadow is walked with 4- or 5-level paging: CR4.PAE must be set")
      } else if hardware.efer & ControlFlags.longModeActive == 0 {
        ("efer", "the shadow is walked with 4- or 5-level paging: EFER.LMA must be set")
      } else if (hardware.cr4 & ControlFlags.fiveLevel != 0) != (machine.guestLevels == 5) {
        ("cr4", "LA57 must match the guest's paging: a shadow mirrors the guest's levels")
      } else {
        nil
      }
    if let modeProblem { throw fail(raw.origins[modeProblem.field], modeProblem.message) }
    let noExecute = hardware.efer & ControlFlags.executeDisableEnable != 0
    for m in raw.mappings {
      try checkCanonical(m.gva, size: m.size, levels: machine.guestLevels, origin: m.origins["gva"])
      if m.hpa > machine.hostPhysicalLimit - m.size {
        throw fail(
          m.origins["hpa"],
          "the mapping reaches past the host's \(machine.hostAddressBits)-bit physical address "
            + "space")
      }
      if !m.rights.contains(.exec) && !noExecute {
        throw fail(
          m.origins["rights"],
          "without exec the entry needs XD, but the shadow's EFER.NXE is off (shadow.efer)")
      }
    }
    let ranges = raw.mappings.map { AddressRange(lower: $0.gva, size: $0.size) }
    if let (later, earlier) = firstOverlap(ranges) {
      throw fail(
        raw.mappings[later].origins["gva"],
        "overlaps shadow.mappings[\(earlier)] (gva \(ranges[earlier]))")
    }
  }

  func checkHostRanges() throws(FormatError) {
    if let (later, earlier) = firstOverlap(spec.hostRanges.map(\.value)) {
      throw fail(
        spec.hostRanges[later].origin,
        "overlaps host-ranges[\(earlier)] (\(spec.hostRanges[earlier].value))")
    }
  }

  func checkLeafCount() throws(FormatError) {
    var total: UInt64 = 0
    let counts =
      spec.guestMappings.map { ($0.size / $0.page.rawValue, $0.origins.item) }
      + spec.hostMappings.map { ($0.size / $0.page.rawValue, $0.origins.item) }
      + rawShadowMappings.map { ($0.size / $0.page.rawValue, $0.origins.item) }
    for (count, origin) in counts {
      total += count
      guard total <= Self.leafLimit else {
        throw fail(
          origin,
          "the spec maps more than \(Self.leafLimit) pages; use larger pages or fewer mappings")
      }
    }
  }

  var rawShadowMappings: [ShadowMapping] {
    if case .raw(let raw) = spec.shadow { return raw.mappings }
    return []
  }

  /// Refuses a guest virtual range that is not canonical for `levels`-level paging.
  func checkCanonical(
    _ gva: UInt64, size: UInt64, levels: Int, origin: Origin
  ) throws(FormatError) {
    let top = UInt64(12 + 9 * levels - 1)  // 47 or 56
    func canonical(_ address: UInt64) -> Bool {
      let high = address >> top
      return high == 0 || high == (UInt64.max >> top)
    }
    guard canonical(gva) else {
      throw fail(
        origin,
        "\(hex(gva)) is not canonical for \(levels)-level paging (bits 63:\(top) must all be "
          + "equal)")
    }
    let last = gva + (size - 1)
    guard canonical(last), (gva >> top == 0) == (last >> top == 0) else {
      throw fail(
        origin,
        "the mapping runs to \(hex(last)), out of the canonical range of \(levels)-level paging")
    }
  }

  // MARK: - Tables

  func buildGuestTables(_ machine: MachineSetup) throws(FormatError) -> TableTree {
    let origin = spec.guest.origins["table-area"]
    var allocator: FrameAllocator
    if let area = spec.guest.tableArea {
      allocator = FrameAllocator(
        from: area, limit: machine.guestPhysicalLimit, space: "guest physical")
    } else {
      var allowed = AddressSet()
      if machine.nestedLevels > 0 {
        allowed = backedGuestPhysical()
      } else {
        allowed.insert(AddressRange(lower: 0, size: machine.guestPhysicalLimit))
      }
      var occupied = AddressSet()
      for m in spec.guestMappings { occupied.insert(AddressRange(lower: m.gpa, size: m.size)) }
      if machine.nestedLevels == 0 {
        // Guest physical is host physical: keep clear of the shadow's frames too.
        for m in rawShadowMappings { occupied.insert(AddressRange(lower: m.hpa, size: m.size)) }
      }
      allocator = FrameAllocator(
        allowed: allowed, avoiding: occupied, limit: machine.guestPhysicalLimit,
        space: machine.nestedLevels > 0 ? "backed guest physical" : "guest physical")
    }
    var tree: TableTree
    do {
      tree = try TableTree(
        name: "guest", levels: machine.guestLevels,
        directoryBits: EntryBits.present | EntryBits.writable | EntryBits.user,
        allocator: &allocator)
    } catch {
      throw fail(origin, error.message)
    }
    for (index, m) in spec.guestMappings.enumerated() {
      var bits = EntryBits.present
      if m.rights.contains(.write) { bits |= EntryBits.writable }
      if m.rights.contains(.user) { bits |= EntryBits.user }
      if !m.rights.contains(.exec) { bits |= EntryBits.executeDisable }
      if m.accessed { bits |= EntryBits.accessed }
      if m.dirty { bits |= EntryBits.dirty }
      if m.global { bits |= EntryBits.global }
      bits |= m.key << 59
      if m.page != .small { bits |= TableBuilder.largePage }
      let name = "guest-mappings[\(index)]"
      do {
        for offset in stride(from: 0, to: m.size, by: Int(m.page.rawValue)) {
          try tree.mapLeaf(
            m.gva + offset, level: m.page.level, value: (m.gpa + offset) | bits,
            accessedBits: m.accessed ? EntryBits.accessed : 0, writer: name,
            allocator: &allocator)
        }
      } catch {
        throw fail(m.origins.item, error.message)
      }
    }
    try writeRawEntries(.guest, into: &tree, allocator: &allocator, machine)
    return tree
  }

  /// Where the guest table at guest physical `table` lives in host memory.
  func hostAddress(ofGuestTable table: UInt64, _ machine: MachineSetup) throws(FormatError)
    -> UInt64
  {
    guard machine.nestedLevels > 0 else { return table }
    guard let m = spec.hostMappings.first(where: { $0.gpa <= table && table - $0.gpa < $0.size })
    else {
      throw fail(
        spec.guest.origins["table-area"],
        "the guest table at guest physical \(hex(table)) is not backed by host-mappings: the "
          + "guest's tables must live in host memory")
    }
    return m.hpa + (table - m.gpa)
  }

  func buildNestedTables(_ machine: MachineSetup, guestTables: [TableLayout.GuestTable])
    throws(FormatError) -> TableTree
  {
    let origins = spec.nested.origins ?? Origins(item: spec.origin("nested"))
    var allocator: FrameAllocator
    if let area = spec.nested.tableArea {
      allocator = FrameAllocator(
        from: area, limit: machine.hostPhysicalLimit, space: "host physical")
    } else {
      allocator = FrameAllocator(
        allowed: wholeSpace(machine.hostPhysicalLimit),
        avoiding: hostOccupied(guestTables: guestTables, nestedTables: []),
        limit: machine.hostPhysicalLimit, space: "host physical")
    }
    var tree: TableTree
    let ept: EPTSpec? = if case .ept(let ept) = spec.nested { ept } else { nil }
    let directoryBits =
      ept.map { EntryBits.eptAll | ($0.modeBasedExecute ? EntryBits.eptUserExecute : 0) }
      ?? (EntryBits.present | EntryBits.writable | EntryBits.user)
    do {
      tree = try TableTree(
        name: "nested", levels: machine.nestedLevels, directoryBits: directoryBits,
        allocator: &allocator)
    } catch {
      throw fail(origins["table-area"], error.message)
    }
    let hostNoExecute: Bool =
      if case .npt(let npt) = spec.nested {
        npt.hostEFER & ControlFlags.executeDisableEnable != 0
      } else {
        false
      }
    for (index, m) in spec.hostMappings.enumerated() {
      var bits: UInt64
      let accessedBit: UInt64
      if ept != nil {
        bits = m.memoryType.encoding << 3
        if m.rights.contains(.read) { bits |= EntryBits.eptRead }
        if m.rights.contains(.write) { bits |= EntryBits.eptWrite }
        if m.rights.contains(.exec) { bits |= EntryBits.eptExecute }
        if m.rights.contains(.userExec) { bits |= EntryBits.eptUserExecute }
        if m.accessed { bits |= EntryBits.eptAccessed }
        if m.dirty { bits |= EntryBits.eptDirty }
        accessedBit = EntryBits.eptAccessed
      } else {
        // Nested accesses are user-mode (SEMANTICS §3.2): every NPT entry carries U/S.
        bits = EntryBits.present | EntryBits.user
        if m.rights.contains(.write) { bits |= EntryBits.writable }
        if !m.rights.contains(.exec) && hostNoExecute { bits |= EntryBits.executeDisable }
        if m.accessed { bits |= EntryBits.accessed }
        if m.dirty { bits |= EntryBits.dirty }
        accessedBit = EntryBits.accessed
      }
      if m.page != .small { bits |= TableBuilder.largePage }
      let name = "host-mappings[\(index)]"
      do {
        for offset in stride(from: 0, to: m.size, by: Int(m.page.rawValue)) {
          try tree.mapLeaf(
            m.gpa + offset, level: m.page.level, value: (m.hpa + offset) | bits,
            accessedBits: m.accessed ? accessedBit : 0, writer: name, allocator: &allocator)
        }
      } catch {
        throw fail(m.origins.item, error.message)
      }
    }
    try writeRawEntries(.nested, into: &tree, allocator: &allocator, machine)
    return tree
  }

  func buildShadowTables(_ raw: RawShadow, _ machine: MachineSetup, layout: TableLayout)
    throws(FormatError) -> TableTree
  {
    var allocator: FrameAllocator
    if let area = raw.tableArea {
      allocator = FrameAllocator(
        from: area, limit: machine.hostPhysicalLimit, space: "host physical")
    } else {
      allocator = FrameAllocator(
        allowed: wholeSpace(machine.hostPhysicalLimit),
        avoiding: hostOccupied(guestTables: layout.guestTables, nestedTables: layout.nestedTables),
        limit: machine.hostPhysicalLimit, space: "host physical")
    }
    var tree: TableTree
    do {
      tree = try TableTree(
        name: "shadow", levels: machine.guestLevels,
        directoryBits: EntryBits.present | EntryBits.writable | EntryBits.user,
        allocator: &allocator)
    } catch {
      throw fail(raw.origins["table-area"], error.message)
    }
    for (index, m) in raw.mappings.enumerated() {
      var bits = EntryBits.present
      if m.rights.contains(.write) { bits |= EntryBits.writable }
      if m.rights.contains(.user) { bits |= EntryBits.user }
      if !m.rights.contains(.exec) { bits |= EntryBits.executeDisable }
      if m.accessed { bits |= EntryBits.accessed }
      if m.dirty { bits |= EntryBits.dirty }
      if m.global { bits |= EntryBits.global }
      bits |= m.key << 59
      if m.page != .small { bits |= TableBuilder.largePage }
      let name = "shadow.mappings[\(index)]"
      do {
        for offset in stride(from: 0, to: m.size, by: Int(m.page.rawValue)) {
          try tree.mapLeaf(
            m.gva + offset, level: m.page.level, value: (m.hpa + offset) | bits,
            accessedBits: m.accessed ? EntryBits.accessed : 0, writer: name,
            allocator: &allocator)
        }
      } catch {
        throw fail(m.origins.item, error.message)
      }
    }
    try writeRawEntries(.shadow, into: &tree, allocator: &allocator, machine)
    return tree
  }

  /// Every address from 0 to `limit`.
  func wholeSpace(_ limit: UInt64) -> AddressSet {
    var set = AddressSet()
    set.insert(AddressRange(lower: 0, size: limit))
    return set
  }

  /// Host physical memory that automatically placed tables keep clear of: what the host and
  /// shadow mappings map, the host ranges, and the tables already placed.
  func hostOccupied(guestTables: [TableLayout.GuestTable], nestedTables: [UInt64]) -> AddressSet {
    var set = AddressSet()
    for m in spec.hostMappings { set.insert(AddressRange(lower: m.hpa, size: m.size)) }
    for m in rawShadowMappings { set.insert(AddressRange(lower: m.hpa, size: m.size)) }
    for range in spec.hostRanges { set.insert(range.value) }
    if spec.nested.levels == 0 {
      for m in spec.guestMappings { set.insert(AddressRange(lower: m.gpa, size: m.size)) }
    }
    for table in guestTables { set.insert(AddressRange(lower: table.hostPhysical, size: 0x1000)) }
    for table in nestedTables { set.insert(AddressRange(lower: table, size: 0x1000)) }
    return set
  }

  /// Writes the raw entries aimed at `kind` tables, in order.
  func writeRawEntries(
    _ kind: TableKind, into tree: inout TableTree, allocator: inout FrameAllocator,
    _ machine: MachineSetup
  ) throws(FormatError) {
    for (index, entry) in spec.rawEntries.enumerated() where entry.table == kind {
      let name = "raw-entries[\(index)]"
      let addressOrigin = entry.origins[kind.addressField]
      guard entry.level <= tree.levels else {
        throw fail(
          entry.origins["level"],
          "the \(kind.rawValue) tables have \(tree.levels) levels, not \(entry.level)")
      }
      if kind == .nested {
        let reach = UInt64(1) << UInt64(12 + 9 * tree.levels)
        guard entry.address < reach else {
          throw fail(
            addressOrigin,
            "\(hex(entry.address)) is beyond what \(tree.levels)-level nested tables translate")
        }
      } else {
        try checkCanonical(entry.address, size: 1, levels: tree.levels, origin: addressOrigin)
      }
      var target: UInt64?
      if let reference = entry.pointsTo {
        guard entry.value & TableBuilder.addressMask == 0 else {
          throw fail(
            entry.origins["value"],
            "with points-to the builder fills in the address (bits 51:12); give only the "
              + "other bits here")
        }
        switch reference {
        case .root:
          target = tree.root
        case .table(let address, let level):
          guard level <= tree.levels else {
            throw fail(
              entry.origins["points-to"],
              "the \(kind.rawValue) tables have \(tree.levels) levels, not \(level)")
          }
          guard let table = tree.table(on: address, level: level) else {
            throw fail(
              entry.origins["points-to"],
              "no level-\(level) \(kind.rawValue) table lies on the walk of \(hex(address)) "
                + "(nothing maps that far)")
          }
          target = table
        }
      }
      do {
        try tree.writeRaw(
          entry.address, level: entry.level, value: entry.value, target: target, writer: name,
          allocator: &allocator)
      } catch {
        throw fail(entry.origins.item, error.message)
      }
    }
  }

  /// The frame numbers of the guest tables a raw shadow says are out of sync.
  func unsyncFrames(_ raw: RawShadow, _ guest: TableTree?) throws(FormatError) -> [UInt64] {
    var frames: [UInt64] = []
    for item in raw.unsync {
      let table: UInt64
      switch item.value {
      case .address(let address):
        guard guest?.tables.contains(address) == true else {
          throw fail(
            item.origin,
            "guest physical \(hex(address)) is not a guest page table (they are at "
              + (guest?.tables.map(hex).joined(separator: ", ") ?? "nothing") + ")")
        }
        table = address
      case .table(let gva, let level):
        guard let found = guest?.table(on: gva, level: level) else {
          throw fail(
            item.origin, "no level-\(level) guest table lies on the walk of \(hex(gva))")
        }
        table = found
      }
      guard !frames.contains(table >> 12) else {
        throw fail(item.origin, "the table at guest physical \(hex(table)) is listed twice")
      }
      frames.append(table >> 12)
    }
    return frames
  }
}

/// Host frames and what occupies them, so that two tables are never placed in one frame.
struct FrameOwners {
  private var owners: [UInt64: String] = [:]

  /// Records that `owner` occupies the frame at `address`; refuses a frame already taken.
  mutating func claim(
    _ address: UInt64, _ owner: String, origin: Origin, file: String
  ) throws(FormatError) {
    if let other = owners[address] {
      throw origin.error(
        "\(owner) and \(other) would share host physical \(hex(address)); move a table area or "
          + "a mapping", file: file)
    }
    owners[address] = owner
  }
}
