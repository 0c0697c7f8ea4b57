import FastMMU
import Machine
import ReferenceModel
import Testing

@testable import Oracle

/// What the explanation search saves must not change what it decides (docs/fuzzing.md, "how
/// the oracle decides"): a saturated search stops early and leaves the oracle exactly where the
/// whole search would, and the copies of memory it patches for nested views always match the
/// oracle's memory.
@Suite struct SearchEconomyTests {
  /// The address read (its walk ends at the root PML5 entry, a leaf of UnfinishedSearchTests'
  /// state); the NPT root entry, which every nested walk reads, made read-only and writable
  /// again without a flush, so that the next search branches in each of the six; the root entry
  /// stored again with its accessed bit clear; the address read twice. The first of those reads
  /// may come from a cached root entry (which writes no A) or walk afresh (which does): the A
  /// bit must end uncertain, and only explanations found late in the search say so.
  static var trace: [String] {
    var operations = [#"{"op":"access","address":"0x800ac0000000","kind":"read"}"#]
    for _ in 0..<3 {
      operations.append(#"{"op":"write-host","address":"0x80000000","value":"0x80001005"}"#)
      operations.append(#"{"op":"write-host","address":"0x80000000","value":"0x80001007"}"#)
    }
    operations.append(#"{"op":"write-guest","address":"0x1000","value":"0x6001"}"#)
    operations.append(#"{"op":"access","address":"0x800ac0000000","kind":"read"}"#)
    operations.append(#"{"op":"access","address":"0x800ac0001000","kind":"read"}"#)
    return operations
  }

  /// Runs the trace through the correct fast MMU with an oracle that stops saturated searches
  /// or not; every observation must be allowed.
  static func judge(stoppingSaturated: Bool) throws -> Oracle {
    let replay = try Replay.load(
      ([UnfinishedSearchTests.header] + trace).joined(separator: "\n"))
    let oracle = try Oracle(mode: .nested, state: replay.state)
    oracle.stopsSaturatedSearches = stoppingSaturated
    let target = FastMMUTarget(mode: .nested)
    try target.reset(to: replay.state)
    for (index, operation) in replay.operations.enumerated() {
      let observed = try target.apply(operation)
      #expect(oracle.check(operation, observed) == .agrees, "operation \(index)")
    }
    return oracle
  }

  @Test func aSaturatedSearchStopsEarlyAndDecidesAsTheWholeSearchWould() throws {
    let early = try Self.judge(stoppingSaturated: true)
    let whole = try Self.judge(stoppingSaturated: false)
    #expect(early.statistics.walks < whole.statistics.walks, "the saturated search stopped")
    #expect(early.statistics.searchLimitReached == 0 && whole.statistics.searchLimitReached == 0)
    #expect(early.uncertain.bits == whole.uncertain.bits, "the same bits are left uncertain")
    #expect(whole.uncertain[0x1_0000_1000] & 0x20 != 0, "the root entry's A bit is uncertain")
    // The same memory is allowed, either way round (nested A/D bits of nested tables, which a
    // search that stopped does not set, are never compared).
    for (judge, other) in [(early, whole), (whole, early)] {
      var exported = try Replay.load(UnfinishedSearchTests.header).state
      exported.memory = other.model.state.memory.snapshot
      #expect(judge.compareMemory(exported) == nil)
    }
  }

  /// A 4-level guest (PML4, PDPT, PD, PT at guest-physical 0x1000–0x4000, linear 0 mapped to
  /// 0x5000, every entry P R/W) over 4-level EPT with A/D flags whose PD entry maps
  /// guest-physical 0..2 MiB to host 0x1_0000_0000 (nested seed 16 of the fuzzing campaign).
  static func cachedNestedState() throws -> MachineState {
    try HandWrittenState.ept(
      eptp: 0x8000_005e, cr4: 0x20,
      memory: [
        0x8000_0000: 0x8000_1007, 0x8000_1000: 0x8000_2007, 0x8000_2000: 0x1_0000_00b7,
        0x1_0000_1000: 0x2003, 0x1_0000_2000: 0x3003, 0x1_0000_3000: 0x4003,
        0x1_0000_4000: 0x5003,
      ])
  }

  /// A write translates (A in every guest entry, D in the PTE); the EPT PDPTE is cleared
  /// without INVEPT, and the guest PTE stored again with A and D clear; the write again. It may
  /// come from the TLB (no A/D write) or from a fresh guest walk through the guest-physical
  /// translations cached by the first (§6.2; A and D in the PTE anew): both must stay allowed.
  /// The first explanation found reads the PTE's older value, A and D set: a search judging
  /// what is already set by that overlay, not by memory, took them as set and stopped.
  @Test func aSaturatedSearchJudgesWhatIsSetByMemoryNotByTheValuesAWalkRead() throws {
    let state = try Self.cachedNestedState()
    let oracle = try Oracle(mode: .nested, state: state)
    let write = TraceOperation.access(linearAddress: 0, Access(.write))
    let translated = TraceObservation(.outcome(.translated(hostPhysical: 0x1_0000_5000)))
    let trace: [(TraceOperation, TraceObservation)] = [
      (write, translated),
      (.writeHost(hostPhysical: 0x8000_1000, value: 0), TraceObservation(.completed)),
      (.writeHost(hostPhysical: 0x1_0000_4000, value: 0x5003), TraceObservation(.completed)),
      (write, translated),
    ]
    for (index, (operation, observed)) in trace.enumerated() {
      #expect(oracle.check(operation, observed) == .agrees, "operation \(index)")
    }
    #expect(oracle.uncertain[0x1_0000_4000] & 0x60 == 0x60, "the PTE's A and D are uncertain")
    for pte: UInt64 in [0x5003, 0x5063] {
      var exported = state
      exported.memory = oracle.model.state.memory.snapshot
      exported.memory[0x1_0000_4000] = pte
      #expect(oracle.compareMemory(exported) == nil, "PTE \(String(pte, radix: 16))")
    }
  }

  @Test func aCopyOfMemoryTakenAgainHoldsEveryWriteMadeSinceItWasHandedBack() {
    var original = PhysicalMemory()
    original[0x1000] = 0x11
    original[0x2008] = 0x22
    let memory = FrameMemory(original)
    var views = MemoryViews()
    var first = views.take { memory }
    first[0x1000] = 0x99  // a view's patch, undone before it comes back
    first[0x1000] = 0x11
    views.giveBack(first)
    views.noteWrite(0x2008, 0x23)
    views.noteWrite(0x9_0000, 0x44)  // a frame the copy did not hold
    let again = views.take { FrameMemory(PhysicalMemory()) }
    #expect(again[0x1000] == 0x11)
    #expect(again[0x2008] == 0x23)
    #expect(again[0x9_0000] == 0x44)
  }

  @Test func copiesHandedBackAtDifferentTimesEachCatchUpWithTheWritesTheyMissed() {
    var views = MemoryViews()
    let base = FrameMemory(PhysicalMemory())
    let a = views.take { base }
    var b = views.take { base }
    views.giveBack(a)
    views.noteWrite(0x10, 1)
    b[0x10] = 1  // b is handed back equal to memory as it is now
    views.giveBack(b)
    views.noteWrite(0x18, 2)
    let last = views.take { base }  // b: misses only the write at 0x18
    #expect(last[0x10] == 1 && last[0x18] == 2)
    let first = views.take { base }  // a: misses both
    #expect(first[0x10] == 1)
    #expect(first[0x18] == 2)
    let fresh = views.take { FrameMemory(PhysicalMemory()) }
    #expect(fresh[0x10] == 0, "with no copy left, a fresh one is made")
  }
}
