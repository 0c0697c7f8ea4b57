import Machine

/// Machines with shadow page tables: a 4- or 5-level guest over 4- or 5-level EPT or NPT
/// (``Geometry``), and a shadow built by
/// composing them the way a hypervisor derives its leaves (SEMANTICS §5.2): the guest's rights
/// ANDed over the path (step 1), W only with the guest leaf's D (step 2), nothing while an A bit
/// is clear (step 3), the host's restrictions (step 4), W dropped on guest page tables
/// (step 5), full rights in non-leaf entries (step 9), a large shadow leaf only over a large
/// host page and splintered 4-KiB leaves otherwise (step 8). Leaves may be missing (lazy
/// filling), and some level-1 guest tables are out of sync, their shadows stale.
///
/// This is a fixture: it knows what it built and composes by that knowledge, with no call into
/// the reference model, so the prover and the region enumeration are checked against an
/// independent construction. ``planted(_:)`` breaks a correct machine in one chosen way.
public struct ShadowMachine: Sendable {
  /// The machine, with its shadow and host ranges.
  public private(set) var state: MachineState
  /// Every shadow leaf written: where the page starts, its level, its entry's host address.
  public private(set) var shadowLeaves: [Leaf] = []
  /// Every guest leaf: where the page starts, its level, its entry's host address.
  public private(set) var guestLeaves: [Leaf] = []
  /// The EPT leaf that maps each guest-physical page used (4-KiB page number → entry address).
  public private(set) var eptLeaves: [UInt64: UInt64] = [:]
  /// Guest-physical frame numbers of the guest's page tables.
  public private(set) var guestTableFrames: [UInt64] = []
  /// Guest virtual pages that map a guest page table writable (a self-mapping).
  public private(set) var tableMappings: [UInt64] = []
  /// Guest virtual 2-MiB pages whose shadow is splintered into 4-KiB leaves.
  public private(set) var splintered: [UInt64] = []

  /// Host = guest physical + 4 GiB.
  public static let hostOffset: UInt64 = 0x1_0000_0000
  /// The host range assigned to the guest: 4 GiB from ``hostOffset``.
  public static let hostRange = HostRange(base: hostOffset, size: 0x1_0000_0000)

  /// One leaf entry.
  public struct Leaf: Hashable, Sendable {
    /// The first guest virtual address of the page.
    public var page: UInt64
    /// 1 (4 KiB) or 2 (2 MiB).
    public var level: Int
    /// The entry's host physical address.
    public var entry: UInt64
  }

  /// A guest mapping to build.
  struct Mapping {
    var gva: UInt64
    var gpa: UInt64
    var level: Int
    var bits: UInt64
    /// The host's rights in EPT's terms (R, W, X and the write-back type), whatever the
    /// host's format: an NPT leaf gets the same rights in its own bits.
    var eptBits: UInt64
    var eptLarge: Bool
    /// Always shadowed (never lazily left out) and never out of sync.
    var pinned: Bool
  }

  /// The paging shapes the random machines come in.
  public struct Geometry: Hashable, Sendable, CustomStringConvertible {
    /// The host dimension's format.
    public enum Host: String, Hashable, Sendable {
      case ept, npt
    }

    /// Guest (and shadow) paging levels: 4 or 5.
    public var guestLevels: Int
    /// EPT or NPT.
    public var host: Host
    /// The host tables' levels: 4 or 5.
    public var hostLevels: Int

    /// Makes a geometry.
    public init(guestLevels: Int, host: Host, hostLevels: Int) {
      self.guestLevels = guestLevels
      self.host = host
      self.hostLevels = hostLevels
    }

    /// 4-level guest over 4-level EPT.
    public static let ept4 = Geometry(guestLevels: 4, host: .ept, hostLevels: 4)
    /// 5-level guest over 5-level EPT.
    public static let ept5 = Geometry(guestLevels: 5, host: .ept, hostLevels: 5)
    /// 4-level guest over 4-level NPT.
    public static let npt4 = Geometry(guestLevels: 4, host: .npt, hostLevels: 4)
    /// 5-level guest over 4-level NPT.
    public static let npt5 = Geometry(guestLevels: 5, host: .npt, hostLevels: 4)
    /// Every geometry.
    public static let all = [ept4, npt4, ept5, npt5]

    /// `5-level guest over 4-level NPT`.
    public var description: String {
      "\(guestLevels)-level guest over \(hostLevels)-level \(host.rawValue.uppercased())"
    }
  }

  /// A small random machine from `seed` in `geometry`: a few 4-KiB and 2-MiB mappings with
  /// random rights, A/D bits and host restrictions, one guest page table mapped writable by the
  /// guest, random control bits, lazily filled shadow, sometimes an out-of-sync level-1 table,
  /// sometimes a mapping in the upper canonical half.
  ///
  /// Every machine has room for every ``Plant``: two pinned 4-KiB mappings are always
  /// shadowed and synced, the first of them with a right the guest denies (W or U) and without
  /// execution (guest XD, or no host X); the self-mapping is always shadowed; the first mapping
  /// is a splintered 2-MiB page, always accessed so that it is shadowed; the self-mapped table
  /// is the guest's root, which is never out of sync. Only ``Plant/hardwareWithoutNXE`` needs
  /// a particular guest — EFER.NXE on and CR4.SMEP off — which `room` set to it guarantees.
  public init(seed: UInt64, geometry: Geometry = .ept4, room: Plant? = nil) {
    var random = SeededGenerator(seed: seed)
    func chance(_ percent: UInt64) -> Bool { UInt64.random(in: 0..<100, using: &random) < percent }
    let nxe = room == .hardwareWithoutNXE || chance(85)
    let topBit = geometry.guestLevels == 5 ? 56 : 47
    var mappings: [Mapping] = []
    let cluster = UInt64.random(in: 1..<(1 << UInt64(topBit - 22)), using: &random) << 21
    var nextData: UInt64 = 0x4000_0000
    let count = Int.random(in: 3...8, using: &random)
    for i in 0..<count {
      let large = i == 0 || (i > 2 && chance(15))
      let level = large ? 2 : 1
      let size: UInt64 = large ? 1 << 21 : 1 << 12
      var gva =
        i < count - 1
        ? (cluster &+ UInt64(i) << 21
          &+ (large ? 0 : UInt64.random(in: 0..<4, using: &random) << 12))
        : UInt64.random(in: 1..<(1 << UInt64(topBit - 12)), using: &random) << 12 & ~(size - 1)
      gva &= 1 << UInt64(topBit) - 1
      if i == count - 1 && i > 2 && chance(30) { gva |= ~(1 << UInt64(topBit) - 1) }
      nextData = (nextData + size - 1) & ~(size - 1)
      var bits = EntryBits.present
      if chance(70) { bits |= EntryBits.writable }
      if chance(60) { bits |= EntryBits.user }
      if i <= 2 || chance(90) { bits |= EntryBits.accessed }
      if chance(60) { bits |= EntryBits.dirty }
      if nxe && chance(30) { bits |= EntryBits.executeDisable }
      var ept = EntryBits.eptRead | EntryBits.eptWriteBack
      if chance(80) { ept |= EntryBits.eptWrite }
      if chance(80) { ept |= EntryBits.eptExecute }
      if i == 1 {
        // The first pinned mapping denies a right and execution.
        bits &= chance(50) ? ~EntryBits.writable : ~EntryBits.user
        if nxe { bits |= EntryBits.executeDisable } else { ept &= ~EntryBits.eptExecute }
      }
      mappings.append(
        Mapping(
          gva: gva, gpa: nextData, level: level, bits: bits, eptBits: ept,
          eptLarge: large && i != 0 && chance(50), pinned: i == 1 || i == 2))
      nextData += size
    }
    var cr4 = GuestSetup.cr4(levels: geometry.guestLevels)
    if chance(30) && room != .hardwareWithoutNXE { cr4 |= 1 << 20 }
    if chance(30) { cr4 |= 1 << 21 }
    let guest = GuestRegisters(
      cr0: GuestSetup.cr0, cr3: 0x1000, cr4: cr4, efer: nxe ? GuestSetup.efer : 0x500,
      rflags: chance(30) ? 0x40002 : 0x2)
    self.init(
      guest: guest, geometry: geometry, mappings: mappings, selfMap: true,
      restrictDirectories: chance(40), lazyPercent: 20, unsync: chance(30), random: &random)
  }

  /// Benchmark B5's state: B1's 262,144 (or `pages`) 4-KiB guest mappings at 0x7f00_0000_0000
  /// onto a seeded permutation of guest frames, EPT mapping every frame used with 4-KiB pages,
  /// and the full shadow a hypervisor holds once every page was touched (B3's final state).
  public init(pages: Int, seed: UInt64) {
    var random = SeededGenerator(seed: seed)
    var permutation = Array(0..<UInt64(pages))
    permutation.shuffle(using: &random)
    let leaf = EntryBits.directory | EntryBits.accessed | EntryBits.dirty
    let ept = EntryBits.eptAll | EntryBits.eptWriteBack
    let mappings = (0..<pages).map { page in
      Mapping(
        gva: WalkWorkload.defaultBase + UInt64(page) << 12,
        gpa: (0x10000 + permutation[page]) << 12, level: 1, bits: leaf, eptBits: ept,
        eptLarge: false, pinned: false)
    }
    let guest = GuestRegisters(
      cr0: GuestSetup.cr0, cr3: 0x1000, cr4: GuestSetup.cr4(levels: 4), efer: GuestSetup.efer)
    self.init(
      guest: guest, geometry: .ept4, mappings: mappings, selfMap: false,
      restrictDirectories: false,
      lazyPercent: 0, unsync: false, random: &random)
  }

  private init(
    guest registers: GuestRegisters, geometry: Geometry, mappings: [Mapping], selfMap: Bool,
    restrictDirectories: Bool, lazyPercent: UInt64, unsync: Bool,
    random: inout SeededGenerator
  ) {
    func chance(_ percent: UInt64) -> Bool { UInt64.random(in: 0..<100, using: &random) < percent }
    let offset = Self.hostOffset
    let nxe = registers.efer >> 11 & 1 == 1
    let levels = geometry.guestLevels
    let topBit = levels == 5 ? 56 : 47
    var guest = TableBuilder(
      levels: levels, tableArea: registers.cr3,
      directoryBits: EntryBits.directory | EntryBits.accessed)
    for m in mappings { guest.map(m.gva, to: m.gpa, pageLevel: m.level, bits: m.bits) }
    var all = mappings
    if selfMap, let table = guest.tables.first {
      // The guest maps its root table, writable: the shadow must not (§5.2 step 5). The root
      // is never out of sync (only level-1 tables may be, §5.5 I5), so it stays protected.
      let gva = (mappings[0].gva &+ (1 << 30)) & (1 << UInt64(topBit) - 1) & ~0xFFF
      let bits = EntryBits.directory | EntryBits.accessed | EntryBits.dirty
      guest.map(gva, to: table, bits: bits)
      all.append(
        Mapping(
          gva: gva, gpa: table, level: 1, bits: bits,
          eptBits: EntryBits.eptAll | EntryBits.eptWriteBack, eptLarge: false, pinned: true))
      tableMappings.append(gva)
    }
    if restrictDirectories {
      // Restrict one directory entry on some path: rights are ANDed over levels (§5.2 step 1).
      let m = all[Int.random(in: 0..<all.count, using: &random)]
      let level = Int.random(in: 2...levels, using: &random)
      if level > m.level {
        let value = guest.entry(of: m.gva, level: level)
        var restricted = value & ~(chance(50) ? EntryBits.writable : EntryBits.user)
        if nxe && chance(30) { restricted |= EntryBits.executeDisable }
        guest.setEntry(of: m.gva, level: level, to: restricted)
      }
    }
    let tableFrames = Set(guest.tables.map { $0 >> 12 })

    // The host tables: EPT, or NPT with the same rights in x86 bits (every right needs U/S,
    // no X is XD, SEMANTICS §3.2).
    func hostBits(_ rights: UInt64) -> UInt64 {
      guard geometry.host == .npt else { return rights }
      var bits = EntryBits.present | EntryBits.user | EntryBits.accessed | EntryBits.dirty
      if rights & EntryBits.eptWrite != 0 { bits |= EntryBits.writable }
      if rights & EntryBits.eptExecute == 0 { bits |= EntryBits.executeDisable }
      return bits
    }
    var ept = TableBuilder(
      levels: geometry.hostLevels, tableArea: 0x2000_0000,
      directoryBits: geometry.host == .npt
        ? EntryBits.directory | EntryBits.accessed : EntryBits.eptAll)
    var eptLeaves: [UInt64: UInt64] = [:]
    var eptOf: [UInt64: UInt64] = [:]  // guest 4-KiB page number → host rights (EPT terms)
    for table in guest.tables {
      ept.map(table, to: table + offset, bits: hostBits(EntryBits.eptAll | EntryBits.eptWriteBack))
      eptOf[table >> 12] = EntryBits.eptAll
    }
    for m in all where eptOf[m.gpa >> 12] == nil {
      let size: UInt64 = m.level == 2 ? 1 << 21 : 1 << 12
      if m.eptLarge {
        ept.map(m.gpa, to: m.gpa + offset, pageLevel: 2, bits: hostBits(m.eptBits))
      } else {
        for page in stride(from: m.gpa, to: m.gpa + size, by: 4096) {
          ept.map(page, to: page + offset, bits: hostBits(m.eptBits))
        }
      }
      for page in stride(from: m.gpa, to: m.gpa + size, by: 4096) { eptOf[page >> 12] = m.eptBits }
    }
    for page in eptOf.keys {
      let large = ept.entry(of: page << 12, level: 2) & TableBuilder.largePage != 0
      eptLeaves[page] = ept.entryAddress(of: page << 12, level: large ? 2 : 1, creating: false)
    }

    // The shadow, composed from what was built.
    var shadow = TableBuilder(
      levels: levels, tableArea: 0x3000_0000,
      directoryBits: EntryBits.directory | EntryBits.accessed)
    var shadowLeaves: [Leaf] = []
    var splintered: [UInt64] = []
    for m in all {
      var user = true
      var writable = true
      var executeDisable = false
      var accessed = true
      for level in stride(from: levels, through: m.level, by: -1) {
        let e = guest.entry(of: m.gva, level: level)
        user = user && e & EntryBits.user != 0
        writable = writable && e & EntryBits.writable != 0
        executeDisable = executeDisable || (nxe && e & EntryBits.executeDisable != 0)
        accessed = accessed && e & EntryBits.accessed != 0
      }
      let leaf = guest.entry(of: m.gva, level: m.level)
      guard accessed else { continue }  // §5.2 step 3
      let size: UInt64 = m.level == 2 ? 1 << 21 : 1 << 12
      let eptBits = eptOf[m.gpa >> 12] ?? 0
      let isTable = tableFrames.contains(m.gpa >> 12)
      var bits = EntryBits.present | EntryBits.accessed | EntryBits.dirty
      if writable && leaf & EntryBits.dirty != 0 && eptBits & EntryBits.eptWrite != 0 && !isTable {
        bits |= EntryBits.writable
      }
      if user { bits |= EntryBits.user }
      if executeDisable || eptBits & EntryBits.eptExecute == 0 { bits |= EntryBits.executeDisable }
      bits |= leaf & (0xF << 59)
      if m.level == 2 && m.eptLarge {
        if m.pinned || chance(100 - lazyPercent) {
          shadow.map(m.gva, to: m.gpa + offset, pageLevel: 2, bits: bits)
          shadowLeaves.append(
            Leaf(
              page: m.gva, level: 2,
              entry: shadow.entryAddress(of: m.gva, level: 2, creating: false)))
        }
        continue
      }
      if m.level == 2 { splintered.append(m.gva) }
      let pages = m.level == 2 ? Array(0..<UInt64(512)).filter { _ in chance(3) } + [0, 1] : [0]
      for i in Set(pages).sorted() where m.level == 2 || m.pinned || chance(100 - lazyPercent) {
        let gva = m.gva + i << 12
        shadow.map(gva, to: m.gpa + offset + i << 12, bits: bits)
        shadowLeaves.append(
          Leaf(page: gva, level: 1, entry: shadow.entryAddress(of: gva, level: 1, creating: false)))
      }
      _ = size
    }

    // An out-of-sync level-1 guest table may have changed since its shadow was built (§5.5
    // I8): the shadow may be stale there, and the guest may write it.
    var unsyncTables: [UInt64] = []
    if unsync, let m = all.first(where: { $0.level == 1 && !$0.pinned }) {
      let slot = guest.entryAddress(of: m.gva, level: 1, creating: false)
      unsyncTables.append(slot >> 12)
      guest.setEntry(of: m.gva, level: 1, to: guest.entry(of: m.gva, level: 1) ^ EntryBits.present)
    }

    var memory = PhysicalMemory()
    ept.place(into: &memory)
    shadow.place(into: &memory)
    guest.place(into: &memory) { $0 + offset }
    let guestLeaves = all.map { m in
      Leaf(
        page: m.gva, level: m.level,
        entry: guest.entryAddress(of: m.gva, level: m.level, creating: false) + offset)
    }
    let processor: Processor
    let nested: NestedPaging
    switch geometry.host {
    case .ept:
      processor = Processor()
      nested = .ept(
        ExtendedPageTables(eptp: GuestSetup.eptp(root: ept.root, levels: geometry.hostLevels)))
    case .npt:
      processor = Processor(vendor: .amd)
      nested = .npt(
        NestedPageTables(nCR3: ept.root, hostCR4: GuestSetup.cr4(levels: geometry.hostLevels)))
    }
    state = MachineState(
      processor: processor, guest: registers, nested: nested,
      shadow: ShadowPaging(cr3: shadow.root, guest: registers, unsyncTables: unsyncTables),
      memory: memory, hostRanges: [Self.hostRange])
    self.shadowLeaves = shadowLeaves
    self.guestLeaves = guestLeaves
    self.eptLeaves = eptLeaves
    self.guestTableFrames = guest.tables.map { $0 >> 12 }
    self.splintered = splintered
  }

  /// The kinds of inconsistency ``planted(_:)`` can introduce, each with the property that
  /// must then fail.
  public enum Plant: String, CaseIterable, Sendable {
    /// A shadow leaf maps the wrong host frame (soundness, I2).
    case wrongFrame = "wrong-frame"
    /// A shadow leaf grants write or user access the composition denies (soundness, I3).
    case extraPermission = "extra-permission"
    /// A shadow leaf lacks XD where the guest or host forbids execution (soundness, I3).
    case missingExecuteDisable = "missing-xd"
    /// The guest removed a mapping (P = 0) whose shadow is still present (soundness, I1).
    case removedMapping = "removed-mapping"
    /// A shadow leaf maps a guest page-table page writable (page-table protection, I5).
    case writablePageTable = "writable-page-table"
    /// EPT and shadow map a page to a host frame outside the guest's ranges (isolation).
    case outsideHostRanges = "outside-host-ranges"
    /// A splintered 4-KiB shadow leaf of a guest 2-MiB page has the wrong offset (soundness).
    case largePageOffset = "large-page-offset"
    /// A guest leaf's A bit is clear although its shadow is present (accessed/dirty, I4).
    case accessedClear = "accessed-clear"
    /// The shadow's hardware runs without EFER.NXE, so fetch faults look like reads (I9).
    case hardwareWithoutNXE = "hardware-without-nxe"
  }

  /// The machine with one inconsistency of `kind` planted, or `nil` when this machine has no
  /// place for it (no suitable leaf).
  public func planted(_ kind: Plant) -> MachineState? {
    var s = state
    let unsync = Set(state.shadow?.unsyncTables ?? [])
    func guestLeaf(of page: UInt64) -> Leaf? {
      guestLeaves.first { $0.page <= page && page - $0.page < ($0.level == 2 ? 1 << 21 : 4096) }
    }
    func synced(_ leaf: Leaf) -> Bool {
      guard let g = guestLeaf(of: leaf.page) else { return false }
      return !unsync.contains((g.entry - Self.hostOffset) >> 12)
    }
    let present = shadowLeaves.filter { s.memory[$0.entry] & 1 != 0 && synced($0) }
    switch kind {
    case .wrongFrame:
      guard let leaf = present.first(where: { $0.level == 1 }) else { return nil }
      s.memory[leaf.entry] ^= 0x1000
    case .extraPermission:
      for leaf in present {
        guard let g = guestLeaf(of: leaf.page) else { continue }
        let shadowEntry = s.memory[leaf.entry]
        let guestEntry = s.memory[g.entry]
        if guestEntry & EntryBits.user == 0 && shadowEntry & EntryBits.user == 0 {
          s.memory[leaf.entry] |= EntryBits.user
          return s
        }
        if guestEntry & EntryBits.writable == 0 && shadowEntry & EntryBits.writable == 0 {
          s.memory[leaf.entry] |= EntryBits.writable
          return s
        }
      }
      return nil
    case .missingExecuteDisable:
      guard
        let leaf = present.first(where: { s.memory[$0.entry] & EntryBits.executeDisable != 0 })
      else { return nil }
      s.memory[leaf.entry] &= ~EntryBits.executeDisable
    case .removedMapping:
      guard let leaf = present.first, let g = guestLeaf(of: leaf.page) else { return nil }
      s.memory[g.entry] &= ~EntryBits.present
    case .writablePageTable:
      guard let page = tableMappings.first,
        let leaf = present.first(where: { $0.page == page })
      else { return nil }
      s.memory[leaf.entry] |= EntryBits.writable
    case .outsideHostRanges:
      // A 4-KiB shadow leaf of a 4-KiB guest page that is not a page table (whose host frame
      // the guest's own walks read).
      let tables = Set(guestTableFrames)
      func eligible(_ leaf: Leaf) -> Bool {
        guard leaf.level == 1, let g = guestLeaf(of: leaf.page), g.level == 1 else { return false }
        return !tables.contains((s.memory[g.entry] & TableBuilder.addressMask) >> 12)
      }
      guard let leaf = present.first(where: eligible), let g = guestLeaf(of: leaf.page)
      else { return nil }
      let gpa = (s.memory[g.entry] & TableBuilder.addressMask)
      guard let eptEntry = eptLeaves[gpa >> 12] else { return nil }
      let outside: UInt64 = 0x7000_0000
      s.memory[eptEntry] = s.memory[eptEntry] & ~TableBuilder.addressMask | outside
      s.memory[leaf.entry] = s.memory[leaf.entry] & ~TableBuilder.addressMask | outside
    case .largePageOffset:
      guard let page = splintered.first,
        let leaf = present.first(where: { $0.page == page && $0.level == 1 })
      else { return nil }
      s.memory[leaf.entry] ^= 0x1000
    case .accessedClear:
      guard let leaf = present.first, let g = guestLeaf(of: leaf.page) else { return nil }
      s.memory[g.entry] &= ~EntryBits.accessed
    case .hardwareWithoutNXE:
      // With NXE and SMEP both clear the hardware's #PF error code has I/D = 0 even for a
      // fetch (SDM Vol. 3A §4.7), so the hypervisor rebuilds a read. A guest with SMEP keeps
      // I/D meaningful, and clearing SMEP in the shadow would let supervisor fetches of user
      // pages through (a soundness break, not this plant): such a guest has no room for it.
      guard state.guest.efer >> 11 & 1 == 1, state.guest.cr4 >> 20 & 1 == 0,
        var shadow = s.shadow, shadow.cr4 >> 20 & 1 == 0
      else { return nil }
      shadow.efer &= ~(1 << 11)
      s.shadow = shadow
    }
    return s
  }
}
