import Machine
import ReferenceModel
import Testing

/// SEMANTICS §1.2 and §1.7 step 1: a non-canonical linear address raises #GP(0) before any
/// walk — no page fault, no memory reference, no A bit, and (§4.1 step 1) no nested access.
@Suite("§1.2 Canonical addresses")
struct CanonicalTests {
  /// Linear addresses and whether they are canonical under 4-level paging (bits 63:47 equal).
  static let fourLevel: [(UInt64, Bool)] = [
    (0x0000_0000_0000_0000, true),
    (0x0000_7FFF_FFFF_FFFF, true),
    (0xFFFF_8000_0000_0000, true),
    (0xFFFF_FFFF_FFFF_FFFF, true),
    (0x0000_8000_0000_0000, false),
    (0xFFFF_7FFF_FFFF_FFFF, false),
    (0x0001_0000_0000_0000, false),
    (0x8000_0000_0000_0000, false),
    (0x00FF_FFFF_FFFF_F000, false),
  ]

  /// The same under 5-level paging (bits 63:56 equal).
  static let fiveLevel: [(UInt64, Bool)] = [
    (0x0000_8000_0000_0000, true),
    (0x00FF_FFFF_FFFF_FFFF, true),
    (0xFF00_0000_0000_0000, true),
    (0xFFFF_7FFF_FFFF_F000, true),
    (0x0100_0000_0000_0000, false),
    (0xFEFF_FFFF_FFFF_FFFF, false),
    (0x8000_0000_0000_0000, false),
  ]

  /// An empty guest: every canonical address meets a not-present PML4E or PML5E.
  static func emptyGuest(levels: Int) -> Setup { Setup.native(levels: levels) }

  @Test(
    "4-level: bits 63:47 equal walks (here to a not-present #PF); otherwise #GP(0)",
    arguments: fourLevel)
  func fourLevelCanonical(address: UInt64, canonical: Bool) throws {
    let t = try Self.emptyGuest(levels: 4).translate(address, .read)
    if canonical {
      #expect(t.outcome == .pageFault(errorCode: 0, linearAddress: address))
      #expect(t.decidingRule == .notPresent)
    } else {
      #expect(t.outcome == .generalProtection)
      #expect(t.decidingRule == .nonCanonical)
      #expect(t.decidingStage == .none)
    }
  }

  @Test(
    "5-level: bits 63:56 equal walks (here to a not-present #PF); otherwise #GP(0)",
    arguments: fiveLevel)
  func fiveLevelCanonical(address: UInt64, canonical: Bool) throws {
    let t = try Self.emptyGuest(levels: 5).translate(address, .userWrite)
    if canonical {
      #expect(t.outcome == .pageFault(errorCode: PF.w | PF.u, linearAddress: address))
    } else {
      #expect(t.outcome == .generalProtection)
      #expect(t.decidingRule == .nonCanonical)
    }
  }

  @Test("#GP comes before the walk: no memory reference and no A/D write, for every access")
  func noWalkOnGeneralProtection() throws {
    // The same indices as `gva`, made non-canonical by bit 63: every entry on that path is
    // present with A = 0 and D = 0, so any walk would write A.
    var s = Setup.native(directory: X86.prw)
    s.map(gva, to: dataGPA, bits: X86.prw)
    let nonCanonical = gva | 1 << 63
    for access in [Access.read, .write, .fetch, .userRead, .userWrite, .userFetch, .implicitRead] {
      for choices in Choices<Concrete>.all {
        let t = try s.translate(nonCanonical, access, choices: choices, recording: true)
        #expect(t.outcome == .generalProtection)
        #expect(t.referenceCount == 0)
        #expect(t.references.isEmpty)
        #expect(t.performedUpdates.isEmpty)
      }
    }
    // The canonical twin walks and sets A: the path really was live.
    let twin = try s.translate(gva, .read)
    #expect(twin.hostPhysical == dataGPA | 0x567)
    #expect(twin.writes.count == 4)
  }

  @Test("#GP comes before any nested access, over EPT and over NPT", arguments: [true, false])
  func noNestedAccessOnGeneralProtection(ept: Bool) throws {
    // The nested tables map nothing: a canonical address exits on the first guest entry.
    var s = ept ? Setup.ept() : Setup.npt()
    s.tableLeaf = 0
    let canonical = try s.translate(gva, .read)
    #expect(canonical.outcome != .generalProtection)
    #expect(canonical.referenceCount > 0)
    let t = try s.translate(0x0000_8000_0000_0000, .read, recording: true)
    #expect(t.outcome == .generalProtection)
    #expect(t.referenceCount == 0)
    #expect(t.references.isEmpty)
  }
}
