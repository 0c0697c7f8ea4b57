import Machine
import ReferenceModel
import Testing

@testable import Oracle

/// What the search of a fault has to find (docs/fuzzing.md, "how the oracle decides"): after
/// a fault no A/D write is known, so the search decides only which bits become uncertain, and
/// a walk that ends in a guest page fault writes no D bit and leaves its leaf's A alone
/// (SEMANTICS §1.8). A search of a fault the fresh walk already gives stops sooner than one
/// that must explain the observation.
@Suite struct FaultSearchTests {
  /// A 4-level guest (PML4, PDPT, PD, PT at guest-physical 0x1000–0x4000, linear 0 mapped to
  /// 0x5000, every entry P R/W) over 4-level EPT whose PD entry maps guest-physical 0..2 MiB to
  /// host 0x1_0000_0000; EPT A/D flags on or off.
  static func state(accessedDirty: Bool) throws -> MachineState {
    try HandWrittenState.ept(
      eptp: accessedDirty ? 0x8000_005e : 0x8000_001e, cr4: 0x20,
      memory: [
        0x8000_0000: 0x8000_1007, 0x8000_1000: 0x8000_2007, 0x8000_2000: 0x1_0000_00b7,
        0x1_0000_1000: 0x2003, 0x1_0000_2000: 0x3003, 0x1_0000_3000: 0x4003,
        0x1_0000_4000: 0x5003,
      ])
  }

  static let address: UInt64 = 0
  static let translated = TraceResult.outcome(.translated(hostPhysical: 0x1_0000_5000))

  /// Runs the trace, every observation expected allowed; returns the walks the last one ran.
  @discardableResult
  static func judge(_ oracle: Oracle, _ trace: [(TraceOperation, TraceResult)]) -> Int {
    var walks = 0
    for (index, (operation, result)) in trace.enumerated() {
      walks = oracle.statistics.walks
      #expect(oracle.check(operation, TraceObservation(result)) == .agrees, "operation \(index)")
    }
    return oracle.statistics.walks - walks
  }

  /// A write translates (A and D set); the PTE is stored again with both clear and the PD
  /// entry pointed at an empty table, without a flush; the write again, observed as the fresh
  /// walk's page fault. A walk through the cached PD entry reaches the PTE, but it translates:
  /// no walk that faults writes the PTE's D (nor its A, as the leaf of a fault). A search cut
  /// after its first walk must leave them known clear: a target that set D there is wrong.
  @Test func aCutSearchOfAPageFaultLeavesNoDirtyBitUncertain() throws {
    let state = try Self.state(accessedDirty: true)
    let oracle = try Oracle(mode: .nested, state: state)
    oracle.searchWalkLimit = 1
    let write = TraceOperation.access(linearAddress: Self.address, Access(.write))
    let fault = TraceResult.outcome(.pageFault(errorCode: 2, linearAddress: Self.address))
    Self.judge(
      oracle,
      [
        (write, Self.translated),
        (.writeGuest(guestPhysical: 0x4000, value: 0x5003), .completed),
        (.writeGuest(guestPhysical: 0x3000, value: 0x6003), .completed),
        (write, fault),
      ])
    #expect(oracle.statistics.explainedFaultSearchesCut == 1, "the fault's search was cut")
    #expect(oracle.statistics.searchLimitReached == 0)
    #expect(oracle.uncertain[0x1_0000_4000] & 0x60 == 0, "the PTE's A and D are known clear")
    var exported = state
    exported.memory = oracle.model.state.memory.snapshot
    #expect(oracle.compareMemory(exported) == nil)
    exported.memory[0x1_0000_4000] = 0x5043
    #expect(oracle.compareMemory(exported)?.hostPhysical == 0x1_0000_4000, "D set is refused")
  }

  /// EPT without A/D flags. A read translates; the PD entry is stored again with A clear and
  /// the PDPT entry pointed at an empty table, without a flush; the EPT root entry takes four
  /// values with read rights, without INVEPT, so that every nested walk may read any of them;
  /// the read again gives the fresh walk's page fault. The walks through the cached PDPT entry
  /// reach the PD entry (A clear, which no walk that faults sets: they all translate), so the
  /// search never saturates: it stops at its limit for a fault the fresh walk gives, and leaves
  /// the PD entry's A uncertain.
  @Test func theSearchOfAFaultTheFreshWalkGivesStopsAtItsOwnLimit() throws {
    let oracle = try Oracle(mode: .nested, state: Self.state(accessedDirty: false))
    let read = TraceOperation.access(linearAddress: Self.address, Access(.read))
    var trace: [(TraceOperation, TraceResult)] = [
      (read, Self.translated),
      (.writeGuest(guestPhysical: 0x3000, value: 0x4003), .completed),
      (.writeGuest(guestPhysical: 0x2000, value: 0x7003), .completed),
    ]
    for rights: UInt64 in [3, 1, 5, 7] {
      trace.append((.writeHost(hostPhysical: 0x8000_0000, value: 0x8000_1000 | rights), .completed))
    }
    trace.append((read, .outcome(.pageFault(errorCode: 0, linearAddress: Self.address))))
    let walks = Self.judge(oracle, trace)
    #expect(oracle.statistics.explainedFaultSearchesCut == 1, "the search was cut")
    #expect(oracle.statistics.searchLimitReached == 0)
    // The fresh walk, then the search's: fewer than a search that must explain may run.
    #expect(walks <= 1 + Oracle.explainedFaultSearchLimit, "\(walks) walks")
    #expect(walks < Oracle.searchLimit, "\(walks) walks")
    #expect(oracle.uncertain[0x1_0000_3000] & 0x20 != 0, "the PD entry's A is uncertain")
  }
}
