import Machine
import ReferenceModel
import Testing
import Workloads

/// SEMANTICS §2.3: EPT misconfigurations M1–M4, and their order against violations V1–V4 —
/// top-down, "present?" first, then the misconfiguration checks on that entry; permissions
/// only after the leaf. Same set-up as the rest of ``EPTTests``.
extension EPTTests {
  struct MisconfigurationCase: CustomTestStringConvertible, Sendable {
    var name: String
    var level: Int
    /// The page size of the data mapping: 1 (4 KiB), 2 (2 MiB), 3 (1 GiB).
    var leafLevel = 1
    /// The entry's bits besides its address (bit 7 is added for a large leaf).
    var bits: UInt64
    var rule: Rule?
    var addressBits = 46
    var executeOnly = true
    var gigabytePages = true
    var testDescription: String { name }
  }

  static let misconfigurations: [MisconfigurationCase] = [
    // M1
    MisconfigurationCase(
      name: "M1: leaf write-only (XWR = 010)", level: 1, bits: EPTE.w | EPTE.wb,
      rule: .eptWriteWithoutRead),
    MisconfigurationCase(
      name: "M1: leaf write+execute (XWR = 110)", level: 1, bits: EPTE.w | EPTE.x | EPTE.wb,
      rule: .eptWriteWithoutRead),
    MisconfigurationCase(
      name: "M1: PDE write-only", level: 2, bits: EPTE.w, rule: .eptWriteWithoutRead),
    MisconfigurationCase(
      name: "M1: PML4E write+execute", level: 4, bits: EPTE.w | EPTE.x, rule: .eptWriteWithoutRead),
    // M2
    MisconfigurationCase(
      name: "M2: leaf execute-only, unsupported", level: 1, bits: EPTE.x | EPTE.wb,
      rule: .eptExecuteOnlyUnsupported, executeOnly: false),
    MisconfigurationCase(
      name: "M2: PDPTE execute-only, unsupported", level: 3, bits: EPTE.x,
      rule: .eptExecuteOnlyUnsupported, executeOnly: false),
    MisconfigurationCase(
      name: "execute-only leaf, supported: not a misconfiguration", level: 1,
      bits: EPTE.x | EPTE.wb, rule: nil),
    // M3: bits 7:3 of PML4E; 6:3 of non-leaf PDPTE/PDE; 29:12 / 20:12 of large leaves; 51:N.
    MisconfigurationCase(
      name: "M3: PML4E bit 3", level: 4, bits: EPTE.rwx | X86.bit(3), rule: .eptReservedBit),
    MisconfigurationCase(
      name: "M3: PML4E bit 6", level: 4, bits: EPTE.rwx | X86.bit(6), rule: .eptReservedBit),
    MisconfigurationCase(
      name: "M3: PML4E bit 7", level: 4, bits: EPTE.rwx | X86.bit(7), rule: .eptReservedBit),
    MisconfigurationCase(
      name: "M3: non-leaf PDPTE bit 5", level: 3, bits: EPTE.rwx | X86.bit(5),
      rule: .eptReservedBit),
    MisconfigurationCase(
      name: "M3: non-leaf PDE bit 3", level: 2, bits: EPTE.rwx | X86.bit(3), rule: .eptReservedBit),
    MisconfigurationCase(
      name: "M3: non-leaf PDE bit 6", level: 2, bits: EPTE.rwx | X86.bit(6), rule: .eptReservedBit),
    MisconfigurationCase(
      name: "M3: 2-MiB leaf bit 12", level: 2, leafLevel: 2, bits: EPTE.all | X86.bit(12),
      rule: .eptReservedBit),
    MisconfigurationCase(
      name: "M3: 2-MiB leaf bit 20", level: 2, leafLevel: 2, bits: EPTE.all | X86.bit(20),
      rule: .eptReservedBit),
    MisconfigurationCase(
      name: "M3: 1-GiB leaf bit 12", level: 3, leafLevel: 3, bits: EPTE.all | X86.bit(12),
      rule: .eptReservedBit),
    MisconfigurationCase(
      name: "M3: 1-GiB leaf bit 29", level: 3, leafLevel: 3, bits: EPTE.all | X86.bit(29),
      rule: .eptReservedBit),
    MisconfigurationCase(
      name: "M3: 1-GiB leaf without 1-GiB EPT pages (bit 7 reserved)", level: 3, leafLevel: 3,
      bits: EPTE.all, rule: .eptReservedBit, gigabytePages: false),
    MisconfigurationCase(
      name: "M3: PTE bit 51 (N = 46)", level: 1, bits: EPTE.all | X86.bit(51),
      rule: .eptReservedBit),
    MisconfigurationCase(
      name: "M3: PTE bit N = 46", level: 1, bits: EPTE.all | X86.bit(46), rule: .eptReservedBit),
    MisconfigurationCase(
      name: "M3: PDE bit 41 with N = 41", level: 2, bits: EPTE.rwx | X86.bit(41),
      rule: .eptReservedBit, addressBits: 41),
    // M4: memory types 2, 3, 7 in a leaf.
    MisconfigurationCase(
      name: "M4: leaf memory type 2", level: 1, bits: EPTE.rwx | EPTE.type(2),
      rule: .eptBadMemoryType),
    MisconfigurationCase(
      name: "M4: leaf memory type 3", level: 1, bits: EPTE.rwx | EPTE.type(3),
      rule: .eptBadMemoryType),
    MisconfigurationCase(
      name: "M4: leaf memory type 7", level: 1, bits: EPTE.rwx | EPTE.type(7),
      rule: .eptBadMemoryType),
    MisconfigurationCase(
      name: "M4: 2-MiB leaf memory type 7", level: 2, leafLevel: 2, bits: EPTE.rwx | EPTE.type(7),
      rule: .eptBadMemoryType),
    // Valid encodings.
    MisconfigurationCase(
      name: "PTE bit 7, bit 11, bits 62:52 and bit 63 are ignored", level: 1,
      bits: EPTE.all | X86.bit(7) | X86.bit(11) | 0xFFF0_0000_0000_0000, rule: nil),
    MisconfigurationCase(
      name: "PTE bit 6 (IPAT) is Qual.finalLinear", level: 1, bits: EPTE.all | X86.bit(6), rule: nil
    ),
    MisconfigurationCase(
      name: "PML4E bits 8–11 and 62:52 are not reserved", level: 4,
      bits: EPTE.rwx | 0x7FF0_0000_0000_0F00, rule: nil),
    MisconfigurationCase(
      name: "a 1-GiB leaf with 1-GiB EPT pages", level: 3, leafLevel: 3, bits: EPTE.all, rule: nil),
    MisconfigurationCase(
      name: "a 2-MiB leaf without 1-GiB EPT pages", level: 2, leafLevel: 2, bits: EPTE.all,
      rule: nil, gigabytePages: false),
  ]

  @Test(
    "M1–M4 give an EPT misconfiguration reporting the GPA only; Qual.finalLinear encodings translate",
    arguments: misconfigurations)
  func misconfiguration(_ c: MisconfigurationCase) throws {
    var s = Setup.ept(
      executeOnly: c.executeOnly, gigabytePages: c.gigabytePages, addressBits: c.addressBits)
    s.map(gva, to: Self.page, bits: X86.prw | X86.a | X86.d)
    let size = TableBuilder.pageSize(level: c.leafLevel)
    s.mapNested(Self.page & ~(size - 1), level: c.leafLevel, bits: EPTE.all)
    let large = c.leafLevel > 1 && c.level == c.leafLevel
    s.setNestedBits(of: Self.page, level: c.level, to: c.bits | (large ? EPTE.ps : 0))
    for access in [Access.read, .write, .fetch] {
      let t = try s.translate(gva, access)
      if let rule = c.rule {
        #expect(t.outcome == .eptMisconfiguration(guestPhysical: Self.finalGPA), "\(access)")
        #expect(t.decidingRule == rule)
        #expect(t.level == UInt64(c.level))
      } else if access == .fetch || c.bits & EPTE.r != 0 {
        #expect(t.hostPhysical != nil, "\(access): \(t.outcome)")
      } else {
        #expect(t.decidingRule == .eptReadDenied || t.decidingRule == .eptWriteDenied)
      }
    }
  }

  @Test(
    "A leaf's memory type 2, 3 or 7 is M4; 0, 1, 4, 5, 6 are Qual.finalLinear (a non-leaf has none)",
    arguments: 0...7)
  func memoryTypes(type: UInt64) throws {
    let bad = [2, 3, 7].contains(type)
    let t = try Self.setup(data: EPTE.rwx | EPTE.type(type)).translate(gva, .write)
    #expect(
      t.outcome
        == (bad
          ? .eptMisconfiguration(guestPhysical: Self.finalGPA)
          : .translated(hostPhysical: Self.finalGPA + Setup.nestedOffset)))
  }

  @Test("A misconfiguration anywhere on the reached path beats a permission violation")
  func misconfigurationBeatsViolation() throws {
    // The PDE denies writes (V3 would fire after the leaf); the leaf's memory type is 7 (M4).
    var s = Self.setup(data: EPTE.rwx | EPTE.type(7))
    s.setNestedBits(of: Self.page, level: 2, to: EPTE.r | EPTE.x)
    let t = try s.translate(gva, .write)
    #expect(t.outcome == .eptMisconfiguration(guestPhysical: Self.finalGPA))
    #expect(t.decidingRule == .eptBadMemoryType)
  }

  @Test("The walk is top-down: the uppermost misconfigured entry decides")
  func upperMisconfigurationDecides() throws {
    var s = Self.setup(data: EPTE.rwx | EPTE.type(2))
    s.setNestedBits(of: Self.page, level: 3, to: EPTE.rwx | X86.bit(4))
    let t = try s.translate(gva, .read)
    #expect(t.outcome == .eptMisconfiguration(guestPhysical: Self.finalGPA))
    #expect(t.decidingRule == .eptReservedBit)
    #expect(t.level == 3)
  }

  @Test("A misconfigured mapping of a guest table reports the guest entry's GPA")
  func misconfigurationOnGuestTable() throws {
    var s = Self.setup()
    let pte = s.guestEntry(of: gva, level: 1)
    s.mapNested(pte & ~0xFFF, bits: EPTE.w | EPTE.wb)
    let t = try s.translate(gva, .read)
    #expect(t.outcome == .eptMisconfiguration(guestPhysical: pte))
    #expect(t.decidingStage == .nestedTable)
  }
}
