import Machine
import Prover
import Testing

/// Page-table protection (SEMANTICS §5.5 I5) guards the set `WP` of §5.1: guest tables that a
/// synced shadow page shadows. A guest table the shadow has not reached yet is not in `WP`, so
/// a shadow may map it writable (KVM only write-protects a table when it first shadows it);
/// once the shadow has a table in its place, a writable mapping of it is a violation.
@Suite("Page-table protection covers shadowed guest tables only")
struct PageTableProtectionScopeTests {
  static let entry: UInt64 = 0x27  // P, R/W, U/S, A
  static let leaf: UInt64 = 0x67  // P, R/W, U/S, A, D

  /// A 4-level guest without nested paging. Branch 0 of the PML4 (0x1000) leads through
  /// 0x2000 and 0x3000 to the level-1 table 0x4000, whose entry 0 maps guest frame 0x8000
  /// writable (address 0). Branch 1 leads through 0x6000 and 0x7000 to 0x8000, a level-1
  /// table. The shadow (root 0x100000) maps address 0 writable to 0x8000; with
  /// `shadowBranchOne` it also holds tables for branch 1, so it shadows 0x8000.
  static func state(shadowBranchOne: Bool) -> MachineState {
    var words: [UInt64: UInt64] = [
      0x1000: 0x2000 | entry, 0x1008: 0x6000 | entry,
      0x2000: 0x3000 | entry, 0x3000: 0x4000 | entry, 0x4000: 0x8000 | leaf,
      0x6000: 0x7000 | entry, 0x7000: 0x8000 | entry,
      0x100000: 0x101000 | entry, 0x101000: 0x102000 | entry, 0x102000: 0x103000 | entry,
      0x103000: 0x8000 | leaf,
    ]
    if shadowBranchOne {
      words[0x100008] = 0x104000 | entry
      words[0x104000] = 0x105000 | entry
      words[0x105000] = 0x106000 | entry  // the shadow of level-1 table 0x8000, empty
    }
    let guest = GuestRegisters(cr0: 0x8001_0011, cr3: 0x1000, cr4: 0x20, efer: 0x500)
    return MachineState(
      guest: guest, shadow: ShadowPaging(cr3: 0x100000, guest: guest),
      memory: PhysicalMemory(words: words))
  }

  func verdict(_ state: MachineState) throws -> PropertyVerdict? {
    var options = ProverOptions()
    options.properties = [.pageTableProtection]
    options.jobs = 1
    return try prove(state, options: options).results.first?.verdict
  }

  @Test("A writable mapping of a guest table the shadow does not shadow is allowed")
  func unshadowedTableMayBeWritable() throws {
    #expect(try verdict(Self.state(shadowBranchOne: false)) == .proved)
  }

  @Test("A writable mapping of a guest table the shadow shadows violates I5")
  func shadowedTableMustBeWriteProtected() throws {
    guard case .violated(let counterexample) = try verdict(Self.state(shadowBranchOne: true))
    else {
      Issue.record("a writable alias of a shadowed, synced table was not found")
      return
    }
    #expect(counterexample.property == .pageTableProtection)
  }
}
