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

  /// A 4-level guest (PML4, PDPT, PD, PT at guest-physical 0x1000–0x4000, linear 0 mapped to
  /// 0x5000, every entry P R/W) whose guest-physical map is an NPT-format P2M mapping 0..2 MiB
  /// to host 0x1_0000_0000 with one 2-MiB leaf.
  static func shadowState() throws -> MachineState {
    try MachineState.load(
      json: """
        {"format": "nestcheck-state", "version": 1,
         "processor": {"vendor": "amd", "physicalAddressBits": 46, "gigabytePages": true},
         "guest": {"cr0": "0x80010011", "cr3": "0x1000", "cr4": "0x20", "efer": "0xd00",
                   "rflags": "0x2", "pkru": "0x0", "pkrs": "0x0"},
         "nested": {"kind": "npt", "ncr3": "0x80000000", "hostCR4": "0x20", "hostEFER": "0xd00",
                    "physicalAddressBits": 48},
         "memory": {"0x80000000": "0x80001007", "0x80001000": "0x80002007",
                    "0x80002000": "0x100000087", "0x100001000": "0x2003",
                    "0x100002000": "0x3003", "0x100003000": "0x4003", "0x100004000": "0x5003"}}
        """)
  }

  /// Under shadow paging the guest PTE is cleared without INVLPG: the next read may still
  /// translate (the stale entry) or fault (a fresh walk). The fault is the fresh walk's, and no
  /// walk that faults there writes a D bit; the A bits it may write change nothing the oracle
  /// decides, so no search runs. The stale translation still needs one.
  @Test(arguments: [false, true])
  func aFaultNoWalkWritesADirtyBitInIsJudgedWithoutASearch(stale: Bool) throws {
    let oracle = try Oracle(mode: .shadow, state: Self.shadowState())
    let read = TraceOperation.access(linearAddress: 0, Access(.read))
    let translated = Outcome.translated(hostPhysical: 0x1_0000_5000)
    #expect(oracle.check(read, TraceObservation(.outcome(translated))) == .agrees)
    let clear = TraceOperation.writeGuest(guestPhysical: 0x4000, value: 0)
    #expect(oracle.check(clear, TraceObservation(.completed)) == .agrees)
    let fault = Outcome.pageFault(errorCode: 0, linearAddress: 0)
    let searched = oracle.statistics.searchedAccesses
    #expect(oracle.check(read, TraceObservation(.outcome(stale ? translated : fault))) == .agrees)
    #expect(oracle.statistics.searchedAccesses == searched + (stale ? 1 : 0))
  }

  /// The same guest over an EPT-format P2M with A/D flags, where a guest A bit is also an EPT
  /// memory-type bit: the fault judged without a search leaves every A bit a faulting walk of
  /// the address could write uncertain — here the PD entry's, stored again with A clear, on the
  /// path the PDPT entry had before it was pointed at an empty table (a walk along it faults at
  /// the cleared PTE) — and the NPT-format P2M none. The PTE is that walk's faulting leaf,
  /// whose A no faulting walk writes (§1.8): it stays known clear either way.
  @Test(arguments: [false, true])
  func aFaultJudgedWithoutASearchUnderAnEPTFormatMapLeavesItsAccessedBitsUncertain(ept: Bool)
    throws
  {
    var state = try Self.shadowState()
    if ept {
      state = try HandWrittenState.ept(
        eptp: 0x8000_005e, cr0: 0x8001_0011, cr4: 0x20,
        memory: state.memory.words.merging([0x8000_2000: 0x1_0000_00b7]) { $1 })
    }
    let oracle = try Oracle(mode: .shadow, state: state)
    let read = TraceOperation.access(linearAddress: 0, Access(.read))
    let trace: [(TraceOperation, TraceResult)] = [
      (read, .outcome(.translated(hostPhysical: 0x1_0000_5000))),
      (.writeGuest(guestPhysical: 0x4000, value: 0), .completed),
      (.writeGuest(guestPhysical: 0x3000, value: 0x4003), .completed),
      (.writeGuest(guestPhysical: 0x2000, value: 0x7003), .completed),
      (read, .outcome(.pageFault(errorCode: 0, linearAddress: 0))),
    ]
    var searched = 0
    for (index, (operation, result)) in trace.enumerated() {
      searched = oracle.statistics.searchedAccesses
      #expect(oracle.check(operation, TraceObservation(result)) == .agrees, "operation \(index)")
    }
    #expect(oracle.statistics.searchedAccesses == searched, "the fault ran no search")
    #expect((oracle.uncertain[0x1_0000_3000] & 0x20 != 0) == ept)
    #expect(oracle.uncertain[0x1_0000_4000] == 0, "the faulting leaf's A is known")
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
