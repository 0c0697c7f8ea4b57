import Machine
import ReferenceModel
import Testing
import Workloads

/// SEMANTICS §4: the two-dimensional walk — every guest paging-entry access translated through
/// the nested tables first, the final guest physical address last; faults in walk order; the
/// number and order of memory references.
@Suite("§4 The two-dimensional walk")
struct Walk2DTests {
  /// The data page, in nested PML4 slot 1 (its nested path shares nothing with the tables').
  static let page: UInt64 = 0x80_0123_4000

  /// A reference as a line: stage, level, guest level, host physical address.
  static func line(_ stage: Stage, _ level: Int, _ guestLevel: Int, _ address: UInt64) -> String {
    "\(stage) L\(level) g\(guestLevel) \(hex(address))"
  }

  static func lines(_ t: Translation<Concrete>) -> [String] {
    t.references.map { line($0.stage, $0.level, $0.guestLevel, $0.address) }
  }

  /// The references SEMANTICS §4.2 lists, computed from the tables by a test-side walk: for
  /// each guest level, the nested walk of the guest entry's GPA and then the entry itself; then
  /// the nested walk of the final GPA.
  static func expectedReferences(_ s: Setup, linear: UInt64, final: UInt64) -> [String] {
    let memory = s.machine().memory
    let nestedLevels = s.host?.levels ?? 0
    var result: [String] = []
    for level in stride(from: s.guest.levels, through: 1, by: -1) {
      let entry = s.guestEntry(of: linear, level: level)
      let nested = radixPath(memory, root: 0x1000, levels: nestedLevels, address: entry)
      for (i, address) in nested.enumerated() {
        result.append(line(.nestedTable, nestedLevels - i, level, address))
      }
      result.append(line(.guest, level, level, s.hostPhysical(entry)))
    }
    let nested = radixPath(memory, root: 0x1000, levels: nestedLevels, address: final)
    for (i, address) in nested.enumerated() {
      result.append(line(.nestedFinal, nestedLevels - i, 0, address))
    }
    return result
  }

  @Test(
    "4-level guest over 4-level EPT: 24 references in the order of §4.2",
    arguments: [false, true])
  func twentyFourReferences(accessedDirty: Bool) throws {
    var s = Setup.ept(accessedDirty: accessedDirty)
    s.map(gva, to: Self.page, bits: X86.prw | X86.a | X86.d)
    s.mapNested(Self.page, bits: EPTE.rwx | EPTE.wb)
    let t = try s.translate(gva, .read, recording: true)
    #expect(t.outcome == .translated(hostPhysical: Self.page + Setup.nestedOffset + 0x567))
    #expect(t.referenceCount == 24)
    #expect(t.references.count == 24)
    // refs 1–4 nested walk of gPML4E's GPA, 5 gPML4E, 6–9 + 10 gPDPTE, 11–14 + 15 gPDE,
    // 16–19 + 20 gPTE, 21–24 nested walk of the final GPA.
    let stages = t.references.map(\.stage)
    let pattern: [Stage] =
      Array(repeating: [.nestedTable, .nestedTable, .nestedTable, .nestedTable, .guest], count: 4)
      .flatMap { $0 } + [.nestedFinal, .nestedFinal, .nestedFinal, .nestedFinal]
    #expect(stages == pattern)
    #expect(
      Self.lines(t) == Self.expectedReferences(s, linear: gva, final: Self.page | 0x567))
    // The guest references read the guest entries themselves.
    let machine = s.machine().memory
    for r in t.references where r.stage == .guest { #expect(r.value == machine[r.address]) }
    #expect(t.references.allSatisfy { $0.happened })
  }

  struct CountCase: CustomTestStringConvertible, Sendable {
    var name: String
    var guestLevels: Int
    var nestedLevels: Int
    var npt: Bool
    var count: UInt64
    var testDescription: String { name }
  }

  static let counts: [CountCase] = [
    CountCase(name: "4 over 4 EPT: 24", guestLevels: 4, nestedLevels: 4, npt: false, count: 24),
    CountCase(name: "5 over 5 EPT: 35", guestLevels: 5, nestedLevels: 5, npt: false, count: 35),
    CountCase(name: "4 over 5 EPT: 29", guestLevels: 4, nestedLevels: 5, npt: false, count: 29),
    CountCase(name: "5 over 4 EPT: 29", guestLevels: 5, nestedLevels: 4, npt: false, count: 29),
    CountCase(name: "4 over 4 NPT: 24", guestLevels: 4, nestedLevels: 4, npt: true, count: 24),
    CountCase(name: "5 over 5 NPT: 35", guestLevels: 5, nestedLevels: 5, npt: true, count: 35),
    CountCase(name: "4 over 5 NPT: 29", guestLevels: 4, nestedLevels: 5, npt: true, count: 29),
    CountCase(name: "5 over 4 NPT: 29", guestLevels: 5, nestedLevels: 4, npt: true, count: 29),
  ]

  @Test("(n+1)(m+1) − 1 references for n guest over m nested levels, in order", arguments: counts)
  func referenceCounts(_ c: CountCase) throws {
    var s =
      c.npt
      ? Setup.npt(guestLevels: c.guestLevels, nptLevels: c.nestedLevels)
      : Setup.ept(guestLevels: c.guestLevels, eptLevels: c.nestedLevels)
    let linear = (c.guestLevels == 5 ? 0x0042_0000_0000_0000 : 0) | gva
    s.map(linear, to: Self.page, bits: X86.prw | X86.a | X86.d)
    s.mapNested(Self.page, bits: c.npt ? X86.prw : EPTE.rwx | EPTE.wb)
    let t = try s.translate(linear, .write, recording: true)
    #expect(t.outcome == .translated(hostPhysical: Self.page + Setup.nestedOffset + 0x567))
    #expect(t.referenceCount == c.count)
    #expect(Self.lines(t) == Self.expectedReferences(s, linear: linear, final: Self.page | 0x567))
  }

  @Test("Native paging reads one entry per level: 4, or 5 with LA57", arguments: [4, 5])
  func nativeCounts(levels: Int) throws {
    var s = Setup.native(levels: levels)
    s.map(gva, to: dataGPA, bits: X86.prw)
    let t = try s.translate(gva, .read, recording: true)
    #expect(t.referenceCount == UInt64(levels))
    #expect(t.references.allSatisfy { $0.stage == .guest })
  }

  struct LargePageCase: CustomTestStringConvertible, Sendable {
    var name: String
    /// The guest leaf level: 1 (4 KiB), 2 (2 MiB), 3 (1 GiB).
    var guestLeaf: Int
    /// The nested leaf level mapping the guest tables, and the one mapping the data.
    var tablesLeaf: Int
    var dataLeaf: Int
    var count: UInt64
    var testDescription: String { name }
  }

  /// Counts of §4.2: Σ over guest entries read of (1 + m − k_h + 1) + (m − k_h(final) + 1).
  static let largePages: [LargePageCase] = [
    LargePageCase(
      name: "guest 2M, host 2M everywhere: 3·(3+1) + 3 = 15", guestLeaf: 2, tablesLeaf: 2,
      dataLeaf: 2, count: 15),
    LargePageCase(
      name: "guest 1G, host 1G everywhere: 2·(2+1) + 2 = 8", guestLeaf: 3, tablesLeaf: 3,
      dataLeaf: 3, count: 8),
    LargePageCase(
      name: "guest 4K, host 1G everywhere: 4·(2+1) + 2 = 14", guestLeaf: 1, tablesLeaf: 3,
      dataLeaf: 3, count: 14),
    LargePageCase(
      name: "guest 4K, host 2M everywhere: 4·(3+1) + 3 = 19", guestLeaf: 1, tablesLeaf: 2,
      dataLeaf: 2, count: 19),
    LargePageCase(
      name: "guest 4K, tables on host 4K, data on host 1G: 4·5 + 2 = 22", guestLeaf: 1,
      tablesLeaf: 1, dataLeaf: 3, count: 22),
    LargePageCase(
      name: "guest 2M, tables on host 1G, data on host 4K: 3·3 + 4 = 13", guestLeaf: 2,
      tablesLeaf: 3, dataLeaf: 1, count: 13),
  ]

  @Test("Large pages shorten both dimensions as §4.2 counts", arguments: largePages, [false, true])
  func largePageCounts(_ c: LargePageCase, npt: Bool) throws {
    var s = npt ? Setup.npt() : Setup.ept()
    let leaf = npt ? X86.prw : EPTE.rwx | EPTE.wb
    let guestSize = TableBuilder.pageSize(level: c.guestLeaf)
    s.map(gva, to: Self.page & ~(guestSize - 1), level: c.guestLeaf, bits: X86.prw | X86.a | X86.d)
    // Guest tables live at GPA 0x1000 up: the nested page at GPA 0 of the given size maps them.
    s.mapNested(0, level: c.tablesLeaf, bits: leaf)
    let final = (Self.page & ~(guestSize - 1)) | (gva & (guestSize - 1))
    let dataSize = TableBuilder.pageSize(level: c.dataLeaf)
    s.mapNested(final & ~(dataSize - 1), level: c.dataLeaf, bits: leaf)
    let t = try s.translate(gva, .read)
    #expect(t.outcome == .translated(hostPhysical: final + Setup.nestedOffset))
    #expect(t.referenceCount == c.count)
  }

  @Test(
    "With guest CR0.PG = 0 only the nested walk of the address itself runs",
    arguments: [false, true])
  func guestPagingOff(npt: Bool) throws {
    var s = npt ? Setup.npt() : Setup.ept()
    s.controls.paging = false
    s.mapNested(Self.page, bits: npt ? X86.prw : EPTE.rwx | EPTE.wb)
    let t = try s.translate(Self.page | 0x567, .write, recording: true)
    #expect(t.outcome == .translated(hostPhysical: Self.page + Setup.nestedOffset + 0x567))
    #expect(t.referenceCount == 4)
    #expect(t.references.allSatisfy { $0.stage == .nestedFinal })
    #expect(t.guestPageSize == 0)
    // Unmapped, the access exits on the final translation with the address as GPA.
    let unmapped = try s.translate(0x0200_0123, .read)
    if npt {
      #expect(
        unmapped.outcome
          == .nestedPageFault(exitInfo1: PF.u | NPF.final, exitInfo2: 0x0200_0123))
    } else {
      #expect(
        unmapped.outcome
          == .eptViolation(
            qualification: Qual.read | Qual.linearValid | Qual.final, guestPhysical: 0x0200_0123,
            guestLinear: 0x0200_0123))
    }
  }

  // MARK: §4.1 Fault order

  @Test("A nested fault fetching guest entry k comes before the guest looks at entry k")
  func nestedFaultBeforeGuestCheck() throws {
    var s = Setup.ept()
    s.map(gva, to: Self.page, bits: X86.prw | X86.a | X86.d)
    s.mapNested(Self.page, bits: EPTE.rwx | EPTE.wb)
    let pdpte = s.guestEntry(of: gva, level: 3)
    s.setGuestBits(of: gva, level: 3, to: 0)  // the guest PDPTE is not present …
    s.mapNested(pdpte & ~0xFFF, bits: 0)  // … and its table page is not mapped
    let t = try s.translate(gva, .read, recording: true)
    #expect(
      t.outcome
        == .eptViolation(
          qualification: Qual.read | Qual.linearValid, guestPhysical: pdpte, guestLinear: gva))
    #expect(t.decidingStage == .nestedTable)
    // 4 + 1 for the gPML4E, then the 4 nested references that find the EPT leaf absent.
    #expect(t.referenceCount == 9)
    #expect(t.references.last?.stage == .nestedTable)
  }

  struct GuestFaultCase: CustomTestStringConvertible, Sendable {
    var name: String
    var leaf: UInt64
    var access: Access
    var errorCode: UInt64
    var testDescription: String { name }
  }

  static let guestFaults: [GuestFaultCase] = [
    GuestFaultCase(name: "not-present leaf", leaf: 0, access: .read, errorCode: 0),
    GuestFaultCase(
      name: "reserved bit in the leaf", leaf: X86.prw | X86.bit(51), access: .read,
      errorCode: PF.p | PF.rsvd),
    GuestFaultCase(
      name: "user read of a supervisor page", leaf: X86.p | X86.w | X86.a, access: .userRead,
      errorCode: PF.p | PF.u),
  ]

  @Test(
    "A guest #PF ends the walk: the final GPA, though unmapped, is never translated",
    arguments: guestFaults, [false, true])
  func guestFaultBeforeFinal(_ c: GuestFaultCase, npt: Bool) throws {
    var s = npt ? Setup.npt() : Setup.ept()
    s.map(gva, to: Self.page, bits: X86.prw)
    s.setGuestBits(of: gva, level: 1, to: c.leaf)
    let t = try s.translate(gva, c.access, recording: true)
    #expect(t.outcome == .pageFault(errorCode: c.errorCode, linearAddress: gva))
    #expect(t.decidingStage == .guest)
    #expect(t.referenceCount == 20)
    #expect(!t.references.contains { $0.stage == .nestedFinal })
  }

  @Test("IMPL: the guest A/D write may come before or after the final translation")
  func accessedDirtyOrder() throws {
    // The guest PTE lacks A; its table page is read-only in EPT (A/D flags off); the data page
    // is unmapped. Final first (KVM) exits on the data GPA; A/D first exits on the A/D write.
    var s = Setup.ept()
    s.map(gva, to: Self.page, bits: X86.prw)
    let pte = s.guestEntry(of: gva, level: 1)
    s.mapNested(pte & ~0xFFF, bits: EPTE.r | EPTE.wb)
    let finalFirst = Outcome.eptViolation(
      qualification: Qual.read | Qual.linearValid | Qual.final, guestPhysical: Self.page | 0x567,
      guestLinear: gva)
    let writeFirst = Outcome.eptViolation(
      qualification: Qual.write | Qual.readable | Qual.linearValid, guestPhysical: pte,
      guestLinear: gva)
    let model = try s.model()
    #expect(model.translate(gva, .read, choices: .kvm).outcome == finalFirst)
    var adFirst = Choices<Concrete>.kvm
    adFirst.accessedDirtyBeforeFinal = true
    #expect(model.translate(gva, .read, choices: adFirst).outcome == writeFirst)
    let allowed = Set(
      Choices<Concrete>.all.map { model.translate(gva, .read, choices: $0).outcome })
    // The other choices add qualification bit 0 to the A/D write's exit, or the advanced bits
    // 9–11 (user, writable, executable guest page) to the final one.
    let writeFirstWithReadBit = Outcome.eptViolation(
      qualification: Qual.read | Qual.write | Qual.readable | Qual.linearValid,
      guestPhysical: pte, guestLinear: gva)
    let finalFirstAdvanced = Outcome.eptViolation(
      qualification: Qual.read | Qual.linearValid | Qual.final | Qual.userAddress
        | Qual.writableAddress | Qual.executableAddress,
      guestPhysical: Self.page | 0x567, guestLinear: gva)
    #expect(allowed == [finalFirst, finalFirstAdvanced, writeFirst, writeFirstWithReadBit])
  }

  @Test("Guest A/D writes go top-down: the first entry whose write fails decides")
  func accessedDirtyWritesTopDown() throws {
    var s = Setup.ept(guestDirectory: X86.prw)
    s.tableLeaf = EPTE.r | EPTE.wb
    s.map(gva, to: Self.page, bits: X86.prw)
    s.mapNested(Self.page, bits: EPTE.rwx | EPTE.wb)
    let pml4e = s.guestEntry(of: gva, level: 4)
    let t = try s.translate(gva, .read)
    #expect(
      t.outcome
        == .eptViolation(
          qualification: Qual.write | Qual.readable | Qual.linearValid, guestPhysical: pml4e,
          guestLinear: gva))
    // The data translation ran first (KVM's order) and succeeded; no guest entry was written.
    #expect(!t.performedUpdates.contains { $0.stage == .guest })
  }

  @Test("Step 8: the guest's rights and the nested rights are both reported")
  func rightsOfBothDimensions() throws {
    var s = Setup.ept()
    s.map(gva, to: Self.page, bits: X86.p | X86.u | X86.a)  // user, read-only, executable
    s.mapNested(Self.page, bits: EPTE.r | EPTE.w | EPTE.wb)  // readable, writable, no execute
    let t = try s.translate(gva, .userRead)
    #expect(t.hostPhysical != nil)
    #expect(t.guestRights.user && !t.guestRights.writable && t.guestRights.executable)
    #expect(t.nestedRights.read && t.nestedRights.write && !t.nestedRights.execute)
  }
}
