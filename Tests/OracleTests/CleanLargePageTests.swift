import Machine
import Testing

@testable import Oracle

/// A guest large page is splintered into 4 KiB shadow leaves held by direct shadow pages, and a
/// leaf made writable while the guest's large leaf was dirty must not serve once the guest maps
/// the range with a clean leaf again: the next write must set its D (SEMANTICS §5.2 steps 2
/// and 8; KVM's direct_access in FNAME(fetch)). Found by the shadow campaigns (seeds 122 and
/// 131), shrunk to five operations.
@Suite struct CleanLargePageTests {
  /// A 4-level guest without nested paging: linear 0x1395_8000_0000 goes through the PML4
  /// entry at 0x1138 to the PDPT entry at 0x22b0, a 1 GiB leaf at 0x4000_0000, A and D clear.
  static let state = """
    {"format": "nestcheck-state", "version": 1,
     "processor": {"vendor": "amd", "physicalAddressBits": 39, "gigabytePages": true},
     "guest": {"cr0": "0x80010011", "cr3": "0x1000", "cr4": "0x20", "efer": "0xd00",
               "rflags": "0x2", "pkru": "0x0", "pkrs": "0x0"},
     "nested": {"kind": "none"},
     "memory": {"0x1138": "0x2007", "0x22b0": "0x40000087"}}
    """
  static let leaf: UInt64 = 0x22b0
  static let page: UInt64 = 0x1395_8000_0000

  /// A write dirties the leaf; the guest stores it back clean and flushes the page; a read of
  /// another 4 KiB piece refills the splintered range; a write to the first piece must set D.
  static let trace: [TraceOperation] = [
    .access(linearAddress: page, Access(.write)),
    .writeGuest(guestPhysical: leaf, value: 0x4000_0087),
    .invlpg(linearAddress: page),
    .access(linearAddress: page + 0x2000, Access(.read)),
    .access(linearAddress: page, Access(.write)),
  ]

  @Test func aWriteThroughAGuestLargeLeafStoredBackCleanSetsItsDirtyFlagAgain() throws {
    let state = try MachineState.load(json: Self.state)
    let oracle = try Oracle(mode: .shadow, state: state)
    let target = FastMMUTarget(mode: .shadow)
    try target.reset(to: state)
    for (index, operation) in Self.trace.enumerated() {
      let observed = try target.apply(operation)
      #expect(oracle.check(operation, observed) == .agrees, "operation \(index)")
    }
    let exported = try #require(target.exportState())
    #expect(exported.memory[Self.leaf] == 0x4000_00e7, "A and D set by the last write")
    #expect(oracle.compareMemory(exported) == nil)
  }

  /// The oracle knows the D flag is set: a target that leaves it clear is wrong.
  @Test func aTargetThatLeavesTheDirtyFlagClearDiverges() throws {
    let state = try MachineState.load(json: Self.state)
    let oracle = try Oracle(mode: .shadow, state: state)
    let target = FastMMUTarget(mode: .shadow)
    try target.reset(to: state)
    for operation in Self.trace { _ = oracle.check(operation, try target.apply(operation)) }
    var exported = try #require(target.exportState())
    exported.memory[Self.leaf] = 0x4000_00a7
    #expect(oracle.compareMemory(exported)?.hostPhysical == Self.leaf)
  }
}
