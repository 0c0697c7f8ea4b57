import Machine
import ReferenceModel
import Testing
import Workloads

/// SEMANTICS §3: AMD NPT as the second dimension — x86 long-mode entries in the host's paging
/// mode, every nested access user-mode, guest page-table accesses performed as writes,
/// EXITINFO1 (error code plus bit 32 or 33) and EXITINFO2, host EFER.NXE, nested A/D.
///
/// Unless a test says otherwise: a 4-level guest over 4-level NPT (host NXE = 1, 48 physical
/// bits), `gva` → `page` with a guest leaf P|W|U|A|D and directories P|W|U|A, guest tables
/// mapped P|W|U, the data page mapped with the leaf the test gives. The data page sits in NPT
/// PML4 slot 1, so no NPT entry on its path is shared with the guest tables' paths.
@Suite("§3 AMD NPT")
struct NPTTests {
  static let page: UInt64 = 0x80_0123_4000
  static let finalGPA = page | 0x567
  static let hostPhysical = finalGPA + Setup.nestedOffset

  static func setup(
    data: UInt64 = X86.prw, guestLeaf: UInt64 = X86.prw | X86.a | X86.d, hostNXE: Bool = true,
    addressBits: Int = 48, nptDirectory: UInt64 = X86.prw
  ) -> Setup {
    var s = Setup.npt(hostNXE: hostNXE, addressBits: addressBits, nptDirectory: nptDirectory)
    s.map(gva, to: page, bits: guestLeaf)
    s.mapNested(page, bits: data)
    return s
  }

  static func finalFault(_ info1: UInt64) -> Outcome {
    .nestedPageFault(exitInfo1: info1 | NPF.final, exitInfo2: finalGPA)
  }

  // MARK: §3.2 Nested accesses are user-mode; §3.3 EXITINFO1 on the final translation

  struct FinalCase: CustomTestStringConvertible, Sendable {
    var name: String
    var leaf: UInt64
    var access: Access
    var hostNXE = true
    /// EXITINFO1 without bit 32, or `nil` when the access translates.
    var info1: UInt64?
    var rule: Rule
    var testDescription: String { name }
  }

  static let finalCases: [FinalCase] = [
    FinalCase(
      name: "supervisor read, NPT U/S = 0: a nested access is a user access",
      leaf: X86.p | X86.w, access: .read, info1: PF.p | PF.u,
      rule: .userAccessToSupervisorAddress),
    FinalCase(
      name: "implicit write, NPT U/S = 0", leaf: X86.p | X86.w, access: .implicitWrite,
      info1: PF.p | PF.w | PF.u, rule: .userAccessToSupervisorAddress),
    FinalCase(name: "read, NPT read-only", leaf: X86.p | X86.u, access: .read, rule: .translated),
    FinalCase(
      name: "supervisor write, NPT read-only", leaf: X86.p | X86.u, access: .write,
      info1: PF.p | PF.w | PF.u, rule: .userWriteToReadOnly),
    FinalCase(
      name: "fetch, NPT read-only, no XD", leaf: X86.p | X86.u, access: .fetch, rule: .translated),
    FinalCase(
      name: "read, NPT not present: P = 0", leaf: X86.w | X86.u, access: .read, info1: PF.u,
      rule: .notPresent),
    FinalCase(
      name: "write, NPT not present", leaf: 0, access: .userWrite, info1: PF.w | PF.u,
      rule: .notPresent),
    FinalCase(
      name: "fetch, NPT not present, host NXE = 1: I/D", leaf: 0, access: .fetch,
      info1: PF.u | PF.id, rule: .notPresent),
    FinalCase(
      name: "fetch, NPT not present, host NXE = 0: no I/D", leaf: 0, access: .fetch,
      hostNXE: false, info1: PF.u, rule: .notPresent),
    FinalCase(
      name: "fetch, NPT XD, host NXE = 1", leaf: X86.prw | X86.xd, access: .fetch,
      info1: PF.p | PF.u | PF.id, rule: .fetchFromExecuteDisabled),
    FinalCase(
      name: "read, NPT XD, host NXE = 1", leaf: X86.prw | X86.xd, access: .read,
      rule: .translated),
    FinalCase(
      name: "read, NPT XD, host NXE = 0: reserved", leaf: X86.prw | X86.xd, access: .read,
      hostNXE: false, info1: PF.p | PF.u | PF.rsvd, rule: .reservedBit),
    FinalCase(
      name: "fetch, NPT bit 51 (N = 48): reserved", leaf: X86.prw | X86.bit(51), access: .fetch,
      info1: PF.p | PF.u | PF.rsvd | PF.id, rule: .reservedBit),
    FinalCase(
      name: "write, NPT bit 48 = N: reserved", leaf: X86.prw | X86.bit(48), access: .write,
      info1: PF.p | PF.w | PF.u | PF.rsvd, rule: .reservedBit),
  ]

  @Test(
    "The final translation is a user-mode nested walk; EXITINFO1 has bit 32, EXITINFO2 the GPA",
    arguments: finalCases)
  func finalTranslation(_ c: FinalCase) throws {
    let t = try Self.setup(data: c.leaf, hostNXE: c.hostNXE).translate(gva, c.access)
    if let info1 = c.info1 {
      #expect(t.outcome == Self.finalFault(info1))
      #expect(t.decidingStage == .nestedFinal)
    } else {
      #expect(t.outcome == .translated(hostPhysical: Self.hostPhysical))
    }
    #expect(t.decidingRule == c.rule)
  }

  @Test("U/S and R/W are ANDed over every NPT level")
  func rightsAreAndedOverLevels() throws {
    var s = Self.setup()
    s.setNestedBits(of: Self.page, level: 3, to: X86.p | X86.w)  // NPT PDPTE: supervisor
    #expect(try s.translate(gva, .read).outcome == Self.finalFault(PF.p | PF.u))
    s.setNestedBits(of: Self.page, level: 3, to: X86.prw)
    s.setNestedBits(of: Self.page, level: 2, to: X86.p | X86.u)  // NPT PDE: read-only
    #expect(try s.translate(gva, .read).hostPhysical == Self.hostPhysical)
    #expect(try s.translate(gva, .write).outcome == Self.finalFault(PF.p | PF.w | PF.u))
  }

  // MARK: §3.2 Guest page-table accesses are writes; §3.3 bit 33

  @Test(
    "A guest page-table read is a nested user write: a read-only table page exits, bit 33 set",
    arguments: 1...4)
  func guestTableAccessIsWrite(level: Int) throws {
    var s = Self.setup()
    let entry = s.guestEntry(of: gva, level: level)
    s.mapNested(entry & ~0xFFF, bits: X86.p | X86.u)
    // Even a guest read, whose guest entries need no A/D write, exits on the table access.
    let t = try s.translate(gva, .read)
    #expect(
      t.outcome
        == .nestedPageFault(exitInfo1: PF.p | PF.w | PF.u | NPF.table, exitInfo2: entry))
    #expect(t.decidingStage == .nestedTable)
    #expect(t.decidingRule == .userWriteToReadOnly)
  }

  @Test("A not-present or reserved nested mapping of a guest table reports W = 1 and bit 33")
  func guestTableFaults() throws {
    var s = Self.setup()
    let pdpte = s.guestEntry(of: gva, level: 3)
    s.mapNested(pdpte & ~0xFFF, bits: 0)
    #expect(
      try s.translate(gva, .fetch).outcome
        == .nestedPageFault(exitInfo1: PF.w | PF.u | NPF.table, exitInfo2: pdpte))
    s.mapNested(pdpte & ~0xFFF, bits: X86.prw | X86.bit(50))
    #expect(
      try s.translate(gva, .fetch).outcome
        == .nestedPageFault(exitInfo1: PF.p | PF.w | PF.u | PF.rsvd | NPF.table, exitInfo2: pdpte))
  }

  // MARK: §3.1 The host's paging mode, not the guest's

  @Test("NPT reserved bits follow the host's long-mode rules (AMD): PS and bit 8 in a PML4E")
  func hostReservedBits() throws {
    for bits in [X86.prw | X86.ps, X86.prw | X86.bit8] {
      var s = Self.setup()
      s.setNestedBits(of: Self.page, level: 4, to: bits)
      #expect(try s.translate(gva, .read).outcome == Self.finalFault(PF.p | PF.u | PF.rsvd))
    }
    var large = Self.setup()
    large.mapNested(Self.page & ~0x1F_FFFF, level: 2, bits: X86.prw | X86.bit(13))
    #expect(try large.translate(gva, .read).outcome == Self.finalFault(PF.p | PF.u | PF.rsvd))
  }

  @Test("With 52 host physical bits no address bit is reserved")
  func wideHost() throws {
    let s = Self.setup(data: X86.prw | X86.bit(51), addressBits: 52)
    #expect(try s.translate(gva, .read).hostPhysical == Self.hostPhysical | 1 << 51)
  }

  @Test("Guest CR0.WP, SMEP, SMAP and PKE do not affect the nested walk")
  func guestControlsDoNotApply() throws {
    // A guest supervisor page (so the guest's own SMEP/SMAP/PKRU rules pass) on NPT entries
    // that are all user-mode, the data one read-only.
    var s = Self.setup(data: X86.p | X86.u, guestLeaf: X86.p | X86.w | X86.a | X86.d)
    s.controls.smep = true
    s.controls.smap = true
    s.controls.pke = true
    s.controls.pkru = 0xFFFF_FFFF
    #expect(try s.translate(gva, .read).hostPhysical == Self.hostPhysical)
    #expect(try s.translate(gva, .fetch).hostPhysical == Self.hostPhysical)
    // With guest CR0.WP = 0 a supervisor write still needs nested R/W.
    s.controls.wp = false
    #expect(try s.translate(gva, .write).outcome == Self.finalFault(PF.p | PF.w | PF.u))
  }

  @Test("Host NXE governs NPT bit 63; guest NXE governs the guest's bit 63")
  func executeDisableByDimension() throws {
    // Guest NXE = 0, host NXE = 1: NPT XD denies a fetch, and is no reserved bit.
    var s = Self.setup(data: X86.prw | X86.xd)
    s.controls.nxe = false
    #expect(try s.translate(gva, .fetch).outcome == Self.finalFault(PF.p | PF.u | PF.id))
    #expect(try s.translate(gva, .read).hostPhysical == Self.hostPhysical)
    // The guest's XD with guest NXE = 0 is a guest reserved-bit #PF whatever the host says.
    s.setGuestBits(of: gva, level: 1, to: X86.prw | X86.a | X86.d | X86.xd)
    #expect(
      try s.translate(gva, .read).outcome
        == .pageFault(errorCode: PF.p | PF.rsvd, linearAddress: gva))
  }

  @Test("A 5-level host (CR4.LA57 at VMRUN) walks 5-level NPT under a 4-level guest")
  func fiveLevelHost() throws {
    var s = Setup.npt(nptLevels: 5)
    s.map(gva, to: Self.page, bits: X86.prw | X86.a | X86.d)
    s.mapNested(Self.page, bits: X86.prw)
    let t = try s.translate(gva, .read)
    #expect(t.outcome == .translated(hostPhysical: Self.hostPhysical))
    #expect(t.referenceCount == 29)
  }

  // MARK: Nested accessed and dirty flags

  /// The NPT writes of a translation, address → bits.
  static func nptWrites(_ t: Translation<Concrete>) -> [UInt64: UInt64] {
    var writes: [UInt64: UInt64] = [:]
    for u in t.performedUpdates where u.stage != .guest { writes[u.address, default: 0] |= u.bits }
    return writes
  }

  @Test(
    "Nested A in every NPT entry used, D in the data leaf on writes and in table leaves by choice",
    arguments: [Access.read, .write], [false, true])
  func nestedAccessedDirty(access: Access, dirtyOnTableRead: Bool) throws {
    let s = Self.setup()
    var choices = Choices<Concrete>.kvm
    choices.nestedDirtyOnTableRead = dirtyOnTableRead
    let t = try s.translate(gva, access, choices: choices)
    #expect(t.hostPhysical == Self.hostPhysical)
    let memory = s.machine().memory
    var expected: [UInt64: UInt64] = [:]
    for table in s.guest.tables {
      let path = radixPath(memory, root: 0x1000, levels: 4, address: table)
      for entry in path { expected[entry, default: 0] |= X86.a }
      if dirtyOnTableRead, let leaf = path.last { expected[leaf, default: 0] |= X86.d }
    }
    let data = radixPath(memory, root: 0x1000, levels: 4, address: Self.page)
    for entry in data { expected[entry, default: 0] |= X86.a }
    if access.kind == .write, let leaf = data.last { expected[leaf, default: 0] |= X86.d }
    #expect(Self.nptWrites(t) == expected)
  }

  @Test("A guest A/D write sets D in the NPT leaf mapping that guest table")
  func guestAccessedDirtyWriteDirtiesNestedLeaf() throws {
    let s = Self.setup(guestLeaf: X86.prw)  // the guest PTE lacks A
    let t = try s.translate(gva, .read)
    let pt = s.guestEntry(of: gva, level: 1) & ~0xFFF
    let memory = s.machine().memory
    let leaf = radixPath(memory, root: 0x1000, levels: 4, address: pt).last ?? 0
    #expect(Self.nptWrites(t)[leaf] == X86.a | X86.d)
    #expect(
      t.writes.contains(
        Write(address: s.hostPhysical(s.guestEntry(of: gva, level: 1)), bits: X86.a)))
  }

  @Test("EXITINFO1 has bit 32 or bit 33, never both")
  func finalOrTableNeverBoth() throws {
    var table = Self.setup()
    table.mapNested(table.guestEntry(of: gva, level: 2) & ~0xFFF, bits: 0)
    let final = try Self.setup(data: 0).translate(gva, .read)
    let walk = try table.translate(gva, .read)
    #expect(final.exitInfo1.map { $0 & (NPF.final | NPF.table) } == NPF.final)
    #expect(walk.exitInfo1.map { $0 & (NPF.final | NPF.table) } == NPF.table)
  }
}
