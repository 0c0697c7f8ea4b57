import Machine
import Testing

@testable import Oracle

/// A guest large page is splintered into 4 KiB shadow leaves held by direct shadow pages, which
/// outlive the guest entry that linked them and are reused by the next fill of the range. A leaf
/// copied from the old large leaf must not serve once the guest has changed it and flushed:
/// not a writable leaf after the guest stores the large leaf back clean (the next write must
/// set its D: SEMANTICS §5.2 steps 2 and 8; KVM's direct_access in FNAME(fetch)), and not a
/// leaf with the old protection key after the guest changes the key (SDM 4.6.2). The first was
/// found by the shadow campaigns (seeds 122 and 131), shrunk to five operations.
@Suite struct SplinteredLargePageTests {
  /// A 4-level guest without nested paging: linear 0x1395_8000_0000 goes through the PML4
  /// entry at 0x1138 to the PDPT entry at 0x22b0, the 1 GiB leaf `leafValue` at 0x4000_0000.
  static func state(leafValue: String, cr4: String = "0x20", pkru: String = "0x0") -> String {
    """
    {"format": "nestcheck-state", "version": 1,
     "processor": {"vendor": "intel", "physicalAddressBits": 39, "gigabytePages": true},
     "guest": {"cr0": "0x80010011", "cr3": "0x1000", "cr4": "\(cr4)", "efer": "0xd00",
               "rflags": "0x2", "pkru": "\(pkru)", "pkrs": "0x0"},
     "nested": {"kind": "none"},
     "memory": {"0x1138": "0x2007", "0x22b0": "\(leafValue)"}}
    """
  }
  static let leaf: UInt64 = 0x22b0
  static let page: UInt64 = 0x1395_8000_0000

  /// Runs `trace` from `json` on the shadow fast MMU, expecting the oracle to accept each
  /// observation; returns the oracle, the target and the last observation.
  static func run(_ trace: [TraceOperation], from json: String) throws -> (
    oracle: Oracle, target: FastMMUTarget, last: TraceObservation?
  ) {
    let state = try MachineState.load(json: json)
    let oracle = try Oracle(mode: .shadow, state: state)
    let target = FastMMUTarget(mode: .shadow)
    try target.reset(to: state)
    var last: TraceObservation?
    for (index, operation) in trace.enumerated() {
      let observed = try target.apply(operation)
      #expect(oracle.check(operation, observed) == .agrees, "operation \(index)")
      last = observed
    }
    return (oracle, target, last)
  }

  /// The leaf starts with A and D clear. A write dirties it; the guest stores it back clean and
  /// flushes the page; a read of another 4 KiB piece refills the splintered range; a write to
  /// the first piece must set D.
  static let cleanState = state(leafValue: "0x40000087")
  static let cleanTrace: [TraceOperation] = [
    .access(linearAddress: page, Access(.write)),
    .writeGuest(guestPhysical: leaf, value: 0x4000_0087),
    .invlpg(linearAddress: page),
    .access(linearAddress: page + 0x2000, Access(.read)),
    .access(linearAddress: page, Access(.write)),
  ]

  @Test func aWriteThroughAGuestLargeLeafStoredBackCleanSetsItsDirtyFlagAgain() throws {
    let (oracle, target, _) = try Self.run(Self.cleanTrace, from: Self.cleanState)
    let exported = try #require(target.exportState())
    #expect(exported.memory[Self.leaf] == 0x4000_00e7, "A and D set by the last write")
    #expect(oracle.compareMemory(exported) == nil)
  }

  /// The oracle knows the D flag is set: a target that leaves it clear is wrong.
  @Test func aTargetThatLeavesTheDirtyFlagClearDiverges() throws {
    let (oracle, target, _) = try Self.run(Self.cleanTrace, from: Self.cleanState)
    var exported = try #require(target.exportState())
    exported.memory[Self.leaf] = 0x4000_00a7
    #expect(oracle.compareMemory(exported)?.hostPhysical == Self.leaf)
  }

  /// Protection keys on (CR4.PKE), PKRU denying data access to key 1; the leaf is a dirty user
  /// page with key 0. A read fills one 4 KiB piece under key 0; the guest moves the leaf to
  /// key 1 and flushes; a fetch (keys never deny fetches) refills the range; a read of the
  /// first piece must fault.
  static let keyedState = state(leafValue: "0x400000e7", cr4: "0x400020", pkru: "0x4")
  static let keyTrace: [TraceOperation] = [
    .access(linearAddress: page + 0x2000, Access(.read, user: true)),
    .writeGuest(guestPhysical: leaf, value: 0x0800_0000_4000_00e7),
    .invlpg(linearAddress: page),
    .access(linearAddress: page, Access(.fetch, user: true)),
    .access(linearAddress: page + 0x2000, Access(.read, user: true)),
  ]

  @Test func aGuestLargeLeafMovedToAnotherProtectionKeyIsCheckedUnderTheNewKey() throws {
    let last = try #require(try Self.run(Self.keyTrace, from: Self.keyedState).last)
    guard case .outcome(.pageFault(let code, _)) = last.result else {
      Issue.record("the read under key 1 succeeded: \(last.result)")
      return
    }
    #expect(code & 0x20 != 0, "PK set in the error code")
  }
}
