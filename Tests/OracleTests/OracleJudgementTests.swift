import FastMMU
import Machine
import Oracle
import ReferenceModel
import Testing
import Workloads

/// A guest 4-level machine over 4-level EPT, the oracle judging it, and the same machine as
/// the reference model sees it without caches: what a fresh walk gives after each store.
final class JudgementScenario {
  var state: MachineState
  let oracle: Oracle
  /// A linear address mapped by a 4-KiB page, read before anything changed.
  let address: UInt64
  /// Its translation before anything changed.
  let original: Outcome
  /// The guest leaf entry mapping it and the EPT leaf mapping its frame: host address, value.
  let guestLeaf: (address: UInt64, value: UInt64)
  let nestedLeaf: (address: UInt64, value: UInt64)

  init(seed: UInt64 = 7, registers: ((inout GuestRegisters) -> Void)? = nil) throws {
    var state = RandomMachine(
      shape: PagingShape(guestLevels: 4, nested: .ept(levels: 4)), seed: seed
    ).state
    registers?(&state.guest)
    self.state = state
    oracle = try Oracle(mode: .nested, state: state)
    let model = try ConcreteModel(state)
    let machine = RandomMachine(
      shape: PagingShape(guestLevels: 4, nested: .ept(levels: 4)), seed: seed)
    let walked = machine.addresses.lazy.map {
      ($0, model.translate($0, Access(.read), recording: true))
    }
    let (address, walk) = try #require(
      walked.first { $0.1.guestPageSize == 0x1000 && !$0.1.outcome.isFault })
    self.address = address
    original = walk.outcome
    let guest = try #require(walk.references.last { $0.stage == .guest && $0.level == 1 })
    let nested = try #require(walk.references.last { $0.stage == .nestedFinal })
    guestLeaf = (guest.address, guest.value)
    nestedLeaf = (nested.address, nested.value)
  }

  /// The EPT pointer.
  var eptp: UInt64 {
    if case .ept(let ept) = state.nested { return ept.eptp }
    return 0
  }

  /// What a fresh walk gives for `access` at the scenario's address now.
  func fresh(_ access: Access = Access(.read), choices: Choices<Concrete> = .kvm) throws
    -> Outcome
  {
    try ConcreteModel(state).translate(address, access, choices: choices).outcome
  }

  /// Applies an operation with the result the architecture determines (and mirrors stores).
  @discardableResult
  func perform(_ operation: TraceOperation, _ result: TraceResult = .completed) -> Judgement {
    if case .writeHost(let hpa, let value) = operation { state.memory[hpa] = value }
    return oracle.check(operation, TraceObservation(result))
  }

  /// The judgement of reading the address and observing `outcome`.
  func read(observing outcome: Outcome, _ access: Access = Access(.read)) -> Judgement {
    oracle.check(.access(linearAddress: address, access), TraceObservation(.outcome(outcome)))
  }

  /// Reads the address (the entries get cached), then changes the guest leaf to map another
  /// frame without flushing; returns the new fresh outcome.
  func cacheThenRemap() throws -> Outcome {
    #expect(read(observing: original) == .agrees)
    perform(.writeHost(hostPhysical: guestLeaf.address, value: guestLeaf.value ^ 1 << 12))
    let now = try fresh()
    try #require(now != original)
    return now
  }
}

extension Judgement {
  var agrees: Bool { self == .agrees }
}

extension Outcome {
  var isFault: Bool {
    if case .translated = self { return false }
    return true
  }
}

/// The oracle's allowed set (docs/fuzzing.md, "how the oracle decides"): stale translations
/// until the covering flush (SEMANTICS §6.1, §6.2), the IMPL alternatives of §8, and nothing
/// else.
@Suite struct OracleJudgementTests {
  @Test func aStaleTranslationIsAllowedUntilINVLPGAndRefusedAfter() throws {
    let s = try JudgementScenario()
    let remapped = try s.cacheThenRemap()
    #expect(s.read(observing: s.original).agrees, "the TLB may still hold the old entry")
    #expect(s.read(observing: remapped).agrees, "or it may have been dropped")
    #expect(s.perform(.invlpg(linearAddress: s.address)).agrees)
    #expect(!s.read(observing: s.original).agrees, "INVLPG dropped the old entry")
    #expect(s.read(observing: remapped).agrees)
  }

  @Test func movToCR3WithoutPCIDsFlushesTheStaleTranslation() throws {
    let s = try JudgementScenario()
    _ = try s.cacheThenRemap()
    #expect(s.perform(.writeRegister(.cr3, value: s.state.guest.cr3)).agrees)
    #expect(!s.read(observing: s.original).agrees)
  }

  @Test func movToCR3WithTheNoFlushBitKeepsTheStaleTranslation() throws {
    let s = try JudgementScenario { $0.cr4 |= 1 << 17 }  // CR4.PCIDE, PCID 0
    _ = try s.cacheThenRemap()
    #expect(s.perform(.writeRegister(.cr3, value: s.state.guest.cr3 | 1 << 63)).agrees)
    #expect(s.read(observing: s.original).agrees, "bit 63 set: the PCID's entries stay")
    #expect(s.perform(.writeRegister(.cr3, value: s.state.guest.cr3)).agrees)
    #expect(!s.read(observing: s.original).agrees, "bit 63 clear: they go")
  }

  @Test(arguments: [InveptType.singleContext, .allContexts])
  func aStaleGuestPhysicalMappingIsAllowedUntilINVEPT(type: InveptType) throws {
    let s = try JudgementScenario()
    #expect(s.read(observing: s.original).agrees)
    // The EPT leaf now maps the page's frame elsewhere: hardware may keep the old one.
    s.perform(.writeHost(hostPhysical: s.nestedLeaf.address, value: s.nestedLeaf.value ^ 1 << 12))
    let remapped = try s.fresh()
    try #require(remapped != s.original)
    #expect(s.read(observing: s.original).agrees)
    #expect(s.perform(.invlpg(linearAddress: s.address)).agrees)
    #expect(s.read(observing: s.original).agrees, "INVLPG leaves guest-physical mappings")
    #expect(s.perform(.invept(type, eptp: s.eptp)).agrees)
    #expect(!s.read(observing: s.original).agrees, "INVEPT dropped them")
    #expect(s.read(observing: remapped).agrees)
  }

  @Test func aWrongFrameIsRefused() throws {
    let s = try JudgementScenario()
    guard case .translated(let hpa) = s.original else {
      Issue.record("the scenario's address translates")
      return
    }
    #expect(!s.read(observing: .translated(hostPhysical: hpa ^ 0x1000)).agrees)
    #expect(s.read(observing: s.original).agrees)
  }

  @Test func aWrongErrorCodeIsRefused() throws {
    let s = try JudgementScenario()
    s.perform(.writeHost(hostPhysical: s.guestLeaf.address, value: 0))
    let fault = try s.fresh(Access(.write))
    guard case .pageFault(let code, let linear) = fault else {
      Issue.record("a not-present leaf gives #PF, not \(fault)")
      return
    }
    for bit in [1, 2, 4] as [UInt64] {
      #expect(
        !s.read(observing: .pageFault(errorCode: code ^ bit, linearAddress: linear), Access(.write))
          .agrees, "error code bit \(bit) flipped")
    }
    #expect(s.read(observing: fault, Access(.write)).agrees)
  }

  @Test func aMissingEPTViolationIsRefused() throws {
    // The EPT leaf is not present from the start: nothing can have cached a mapping.
    let base = try JudgementScenario()
    var state = base.state
    state.memory[base.nestedLeaf.address] = 0
    let violation = try ConcreteModel(state).translate(base.address, Access(.read)).outcome
    guard case .eptViolation = violation else {
      Issue.record("a not-present EPT leaf gives an EPT violation, not \(violation)")
      return
    }
    let read = TraceOperation.access(linearAddress: base.address, Access(.read))
    let missing = try Oracle(mode: .nested, state: state)
    #expect(!missing.check(read, TraceObservation(.outcome(base.original))).agrees)
    let taken = try Oracle(mode: .nested, state: state)
    #expect(taken.check(read, TraceObservation(.outcome(violation))).agrees)
  }

  @Test func everyIMPLChoiceOfAnEPTViolationIsAllowedAndNothingElse() throws {
    // A guest table the EPT maps read-only: the guest walk's A/D write is an EPT violation
    // whose qualification depends on the §8 choices.
    let base = try JudgementScenario()
    var state = base.state
    let model = try ConcreteModel(state)
    let walk = model.translate(base.address, Access(.write), recording: true)
    let table = try #require(
      walk.references.last { $0.stage == .nestedTable && $0.level == 1 && $0.guestLevel == 1 })
    state.memory[table.address] = table.value & ~UInt64(2)  // not writable
    state.memory[base.guestLeaf.address] = base.guestLeaf.value & ~UInt64(0x60)  // A, D clear
    let variants = try Set(
      Choices<Concrete>.all.map {
        try ConcreteModel(state).translate(base.address, Access(.write), choices: $0).outcome
      })
    for outcome in variants {
      let oracle = try Oracle(mode: .nested, state: state)
      let judgement = oracle.check(
        .access(linearAddress: base.address, Access(.write)), TraceObservation(.outcome(outcome)))
      #expect(judgement.agrees, "\(outcome) is some IMPL choice's")
    }
    for outcome in variants {
      guard case .eptViolation(let qualification, let gpa, let linear) = outcome else { continue }
      let bogus = Outcome.eptViolation(
        qualification: qualification ^ 1 << 5, guestPhysical: gpa, guestLinear: linear)
      guard !variants.contains(bogus) else { continue }
      let oracle = try Oracle(mode: .nested, state: state)
      let judgement = oracle.check(
        .access(linearAddress: base.address, Access(.write)), TraceObservation(.outcome(bogus)))
      #expect(!judgement.agrees, "\(bogus) is no choice's")
    }
  }

  @Test func aDivergenceListsTheNestedFaultOfEveryIMPLChoice() throws {
    // The state of the test above, observed translating: no choice does. The report lists
    // every EPT violation some choice gives, although a search judging a translation need not
    // try the choices that only shape a nested fault.
    let base = try JudgementScenario()
    var state = base.state
    let model = try ConcreteModel(state)
    let walk = model.translate(base.address, Access(.write), recording: true)
    let table = try #require(
      walk.references.last { $0.stage == .nestedTable && $0.level == 1 && $0.guestLevel == 1 })
    state.memory[table.address] = table.value & ~UInt64(2)
    state.memory[base.guestLeaf.address] = base.guestLeaf.value & ~UInt64(0x60)
    let variants = try Set(
      Choices<Concrete>.all.map {
        try ConcreteModel(state).translate(base.address, Access(.write), choices: $0).outcome
      })
    #expect(variants.count > 1, "the choices give several qualifications")
    let oracle = try Oracle(mode: .nested, state: state)
    let judgement = oracle.check(
      .access(linearAddress: base.address, Access(.write)),
      TraceObservation(.outcome(.translated(hostPhysical: 0xdead_0000))))
    guard case .diverges(let divergence) = judgement else {
      Issue.record("a translation no walk gives is refused")
      return
    }
    for outcome in variants {
      #expect(divergence.allowed.contains(.outcome(outcome)), "\(outcome) is listed")
    }
  }

  @Test func aStoreHasADeterminedResult() throws {
    let s = try JudgementScenario()
    let store = TraceOperation.writeHost(hostPhysical: s.guestLeaf.address, value: 0)
    #expect(!s.oracle.check(store, TraceObservation(.refused(.invalidValue))).agrees)
  }
}

/// What the oracle allows when its explanation search gives up before judging every walk
/// (docs/fuzzing.md, "how the oracle decides"): the outcome is accepted, and so must be the A/D
/// writes of the walks that give it (SEMANTICS §1.8, §6.1, §6.3).
@Suite struct GivenUpSearchTests {
  /// The `fuzz-npt` spec's state (a 4-level guest over NPT mapping guest-physical 0–4 MiB at
  /// host 4 GiB with 2-MiB pages; linear 0x7f0000000000 → guest-physical 0x100000 by the guest
  /// leaf at host 0x100004000) as a replay header.
  static let header = [
    #"{"format":"nestcheck-replay","version":1,"target":"fast-mmu:nested","mode":"nested","#,
    #""state":{"format":"nestcheck-state","version":1,"processor":{"vendor":"amd","#,
    #""physicalAddressBits":46,"gigabytePages":true},"guest":{"cr0":"0x80010011","#,
    #""cr3":"0x1000","cr4":"0x20","efer":"0xd00","rflags":"0x2","pkru":"0x0","pkrs":"0x0"},"#,
    #""nested":{"kind":"npt","ncr3":"0x1000","hostCR4":"0x20","hostEFER":"0xd00","#,
    #""physicalAddressBits":48},"hostRanges":[{"base":"0x100000000","size":"0x400000"}],"#,
    #""memory":{"0x1000":"0x2007","0x2000":"0x3007","0x3000":"0x100000087","#,
    #""0x3008":"0x100200087","0x1000017f0":"0x2007","0x100002000":"0x3007","#,
    #""0x100003000":"0x4007","0x100004000":"0x8000000000100007","#,
    #""0x100004008":"0x8000000000101007","#,
    #""0x100004020":"0x8000000000104007"}}}"#,
  ].joined()

  /// Found by the `fuzz-npt` gate check (seed 14), shrunk: a fetch faults (XD), the guest
  /// tables are rewritten and walked (nested entries cached), the NPT PDPTE covering all guest
  /// memory is zeroed without a flush, and a write to the faulted page goes through the stale
  /// nested translations — a search too wide for the oracle's walk limit.
  static let operations = [
    #"{"op":"access","address":"0x7f0000000000","kind":"fetch"}"#,
    #"{"op":"write-host","address":"0x3000","value":"0x100000087"}"#,
    #"{"op":"invept","type":"single-context","eptp":"0x1000"}"#,
    #"{"op":"write-host","address":"0x1000","value":"0x2007"}"#,
    #"{"op":"write-guest","address":"0x2000","value":"0x3007"}"#,
    #"{"op":"write-guest","address":"0x17f0","value":"0x2003"}"#,
    #"{"op":"access","address":"0x7f0000004000","kind":"read"}"#,
    #"{"op":"write-register","register":"cr4","value":"0x200020"}"#,
    #"{"op":"write-host","address":"0x2000","value":"0x0"}"#,
  ]

  @Test func aWriteThroughStaleNestedEntriesMaySetTheGuestLeafsAccessedAndDirtyBits() throws {
    let replay = try Replay.load(([Self.header] + Self.operations).joined(separator: "\n"))
    let oracle = try Oracle(mode: .nested, state: replay.state)
    let observed: [Int: Outcome] = [
      0: .pageFault(errorCode: 0x11, linearAddress: 0x7f00_0000_0000),
      6: .translated(hostPhysical: 0x1_0010_4000),
    ]
    for (index, operation) in replay.operations.enumerated() {
      let result = observed[index].map { TraceResult.outcome($0) } ?? .completed
      #expect(oracle.check(operation, TraceObservation(result)) == .agrees, "operation \(index)")
    }
    // The NPT has no translation now; the TLB may still hold the nested ones (§6.3).
    let write = TraceOperation.access(linearAddress: 0x7f00_0000_0000, Access(.write))
    #expect(
      oracle.check(write, TraceObservation(.outcome(.translated(hostPhysical: 0x1_0010_0000))))
        == .agrees)

    // Memory as a processor that made that write leaves it: the stores, the A bits of the
    // read, and A and D in the leaf of the write (§1.8: a write through a leaf with D = 0
    // sets D in memory).
    var exported = replay.state
    exported.memory[0x2000] = 0
    exported.memory[0x1_0000_17f0] = 0x2023
    exported.memory[0x1_0000_2000] = 0x3027
    exported.memory[0x1_0000_3000] = 0x4027
    exported.memory[0x1_0000_4020] = 0x8000_0000_0010_4027
    exported.memory[0x1_0000_4000] = 0x8000_0000_0010_0067
    let disagreement = oracle.compareMemory(exported)
    #expect(disagreement == nil, "\(disagreement.map { "\($0)" } ?? "")")

    // Setting D in a leaf no walk reached stays a disagreement.
    exported.memory[0x1_0000_4008] = 0x8000_0000_0010_1047
    #expect(oracle.compareMemory(exported)?.hostPhysical == 0x1_0000_4008)
  }

  /// The whole `fuzz-npt` state: the guest leaves of linear 0x7f0000000000–0x7f000000f000 at
  /// host 0x100004000–0x100004078.
  static let fullHeader = [
    #"{"format":"nestcheck-replay","version":1,"target":"fast-mmu:nested","mode":"nested","#,
    #""state":{"format":"nestcheck-state","version":1,"processor":{"vendor":"amd","#,
    #""physicalAddressBits":46,"gigabytePages":true},"guest":{"cr0":"0x80010011","#,
    #""cr3":"0x1000","cr4":"0x20","efer":"0xd00","rflags":"0x2","pkru":"0x0","pkrs":"0x0"},"#,
    #""nested":{"kind":"npt","ncr3":"0x1000","hostCR4":"0x20","hostEFER":"0xd00","#,
    #""physicalAddressBits":48},"hostRanges":[{"base":"0x100000000","size":"0x400000"}],"#,
    #""memory":{"0x1000":"0x2007","0x2000":"0x3007","0x3000":"0x100000087","#,
    #""0x3008":"0x100200087","0x1000017f0":"0x2007","0x100002000":"0x3007","#,
    #""0x100003000":"0x4007","0x100004000":"0x8000000000100007","#,
    #""0x100004008":"0x8000000000101007","0x100004010":"0x8000000000102007","#,
    #""0x100004018":"0x8000000000103007","0x100004020":"0x8000000000104007","#,
    #""0x100004028":"0x8000000000105007","0x100004030":"0x8000000000106007","#,
    #""0x100004038":"0x8000000000107007","0x100004040":"0x8000000000108007","#,
    #""0x100004048":"0x8000000000109007","0x100004050":"0x800000000010a007","#,
    #""0x100004058":"0x800000000010b007","0x100004060":"0x800000000010c007","#,
    #""0x100004068":"0x800000000010d007","0x100004070":"0x800000000010e007","#,
    #""0x100004078":"0x800000000010f007"}}}"#,
  ].joined()

  /// Found by the `fuzz-npt` gate check (seed 14, episode 7), shrunk: the guest tables and the
  /// NPT entries above them are rewritten without a flush, and a write goes through the stale
  /// nested translations to the guest leaf, setting its A and D, while the fresh walk gives a
  /// #NPF. A search that gives up before running the walk that explains it must leave the A/D
  /// bits of every guest entry its walks read possible, not only those of the walks it judged.
  static let staleWrite = [
    #"{"op":"access","address":"0x7f0000006000","kind":"read"}"#,
    #"{"op":"write-host","address":"0x2000","value":"0x3007"}"#,
    #"{"op":"write-host","address":"0x1000","value":"0x2001"}"#,
    #"{"op":"write-guest","address":"0x2000","value":"0x3007"}"#,
    #"{"op":"write-guest","address":"0x17f0","value":"0x2001"}"#,
    #"{"op":"write-host","address":"0x3000","value":"0x100000087"}"#,
    #"{"op":"write-guest","address":"0x17f0","value":"0x2003"}"#,
    #"{"op":"write-register","register":"cr4","value":"0x200020"}"#,
    #"{"op":"write-host","address":"0x2000","value":"0x0"}"#,
    #"{"op":"access","address":"0x7f0000004000","kind":"write"}"#,
  ]

  @Test(arguments: [1, 8, 32, Oracle.searchLimit])
  func aSearchThatGivesUpLeavesTheAccessedDirtyBitsOfWhatItReadPossible(limit: Int) throws {
    let replay = try Replay.load(([Self.fullHeader] + Self.staleWrite).joined(separator: "\n"))
    let oracle = try Oracle(mode: .nested, state: replay.state)
    oracle.searchWalkLimit = limit
    let target = FastMMUTarget(mode: .nested)
    try target.reset(to: replay.state)
    for (index, operation) in replay.operations.enumerated() {
      let observed = try target.apply(operation)
      #expect(oracle.check(operation, observed) == .agrees, "operation \(index)")
    }
    #expect(
      limit == Oracle.searchLimit || oracle.statistics.searchLimitReached > 0,
      "a search gave up")
    let exported = try #require(target.exportState())
    #expect(exported.memory[0x1_0000_4020] & 0x60 == 0x60, "the write set A and D in the leaf")
    let disagreement = oracle.compareMemory(exported)
    #expect(disagreement == nil, "\(disagreement.map { "\($0)" } ?? "")")
  }
}

/// A nested entry's values held at separate times are one option of the explanation search
/// (docs/fuzzing.md, "how the oracle decides"): its cost grows with the distinct values, not
/// with the stores.
@Suite struct NestedVersionMergingTests {
  @Test func aNestedEntryStoredBackAndForthDoesNotMultiplyTheSearch() throws {
    // The NPT root entry is made read-only and writable again, nine versions of two values,
    // without a flush; every nested walk of the repeated read's six may have cached any.
    var operations = [#"{"op":"access","address":"0x800ac0000000","kind":"read"}"#]
    for _ in 0..<4 {
      operations.append(#"{"op":"write-host","address":"0x80000000","value":"0x80001005"}"#)
      operations.append(#"{"op":"write-host","address":"0x80000000","value":"0x80001007"}"#)
    }
    operations.append(#"{"op":"access","address":"0x800ac0000000","kind":"read"}"#)
    let replay = try Replay.load(
      ([UnfinishedSearchTests.header] + operations).joined(separator: "\n"))
    let oracle = try Oracle(mode: .nested, state: replay.state)
    let target = FastMMUTarget(mode: .nested)
    try target.reset(to: replay.state)
    var searchedBefore = 0
    for (index, operation) in replay.operations.enumerated() {
      searchedBefore = oracle.statistics.searchedAccesses
      let observed = try target.apply(operation)
      #expect(oracle.check(operation, observed) == .agrees, "operation \(index)")
    }
    #expect(oracle.statistics.searchedAccesses == searchedBefore + 1, "the last read searched")
    #expect(oracle.statistics.searchLimitReached == 0, "the search did not give up")
  }
}

/// A batch's updates each go through the nested configuration as it is when the update is
/// made; where uncertain bits make a backing ambiguous, the target's report picks it: an update
/// before the one the target refused was backed (docs/fuzzing.md, "how the oracle decides").
@Suite struct BatchBackingTests {
  /// A shadow-paging replay (5-level guest over 5-level EPT with mode-based execute), without
  /// the words no operation reads.
  static let header = [
    #"{"format":"nestcheck-replay","version":1,"target":"fast-mmu:shadow","mode":"shadow","#,
    #""state":{"format":"nestcheck-state","version":1,"processor":{"vendor":"intel","#,
    #""physicalAddressBits":39,"gigabytePages":true},"guest":{"cr0":"0x80010011","#,
    #""cr3":"0x1000","cr4":"0x400020","efer":"0xd00","rflags":"0x2","pkru":"0x0","#,
    #""pkrs":"0x54d3"},"nested":{"kind":"ept","eptp":"0x80000026","#,
    #""physicalAddressBits":46,"executeOnly":false,"gigabytePages":true,"#,
    #""modeBasedExecute":true},"memory":{"0x80000000":"0x80001407","#,
    #""0x80001000":"0x80002407","0x80002000":"0x80003407","0x80003000":"0x80004407","#,
    #""0x80003008":"0x80005407","0x80004008":"0x100001437","0x80004010":"0x100002437","#,
    #""0x80004018":"0x100003437","0x80005010":"0x100202437","0x100001300":"0x2007","#,
    #""0x100002628":"0x3007"}}}"#,
  ].joined()

  /// Found by the shadow campaign (seed 1, episode 18), shrunk: a 1-GiB EPT leaf maps
  /// guest-physical 0 onto the EPT root table, so a guest walk may set A (bit 5, a reserved bit
  /// of the EPT root entry) there; a search that gives up leaves it uncertain, and the first
  /// update of the last batch, which the target applies before refusing the second, is backed
  /// whichever way that bit is.
  static let operations = [
    #"{"op":"access","address":"0x303140800000","kind":"read"}"#,
    #"{"op":"paravirtual-batch","updates":[{"entry":"0x2628","value":"0x1"}]}"#,
    #"{"op":"write-guest","address":"0x2628","value":"0x3001"}"#,
    #"{"op":"write-host","address":"0x80001000","value":"0x80002001"}"#,
    #"{"op":"paravirtual-batch","updates":[{"entry":"0x2628","value":"0x3003"},"#
      + #"{"entry":"0x3020","value":"0x1"}]}"#,
    #"{"op":"write-host","address":"0x80003000","value":"0x80004081"}"#,
    #"{"op":"access","address":"0x303140800000","kind":"read"}"#,
    #"{"op":"paravirtual-batch","updates":[{"entry":"0x202628","value":"0x0"},"#
      + #"{"entry":"0x0","value":"0x0"}]}"#,
  ]

  @Test func anUpdateBeforeTheRefusedOneWasBacked() throws {
    let replay = try Replay.load(([Self.header] + Self.operations).joined(separator: "\n"))
    let oracle = try Oracle(mode: .shadow, state: replay.state)
    oracle.searchWalkLimit = 1
    let target = FastMMUTarget(mode: .shadow)
    try target.reset(to: replay.state)
    var results: [TraceResult] = []
    for (index, operation) in replay.operations.enumerated() {
      let observed = try target.apply(operation)
      results.append(observed.result)
      #expect(oracle.check(operation, observed) == .agrees, "operation \(index)")
    }
    #expect(results.last == .batch(status: TraceResult.invalidStatus, applied: 1))
    // The search that gives up judges a fault the fresh walk gives: counted apart.
    #expect(oracle.statistics.explainedFaultSearchesCut > 0, "a search gave up")
  }
}

/// A combined translation cached and not invalidated may be used without an A/D write, and an
/// explanation search that gives up before reaching the walk reading it must not make the
/// A/D writes of the walks it did judge certain (SEMANTICS §6.1: a TLB hit writes no A/D).
@Suite struct UnfinishedSearchTests {
  /// The state of a fast-mmu:nested replay (5-level guest, CR3 0x1000, over NPT), without the
  /// NPT page table no walk of the trace reads.
  static let header = [
    #"{"format":"nestcheck-replay","version":1,"target":"fast-mmu:nested","#,
    #""mode":"nested","state":{"format":"nestcheck-state","version":1,"#,
    #""processor":{"vendor":"amd","physicalAddressBits":39,"gigabytePages":true},"#,
    #""guest":{"cr0":"0x80010011","cr3":"0x1000","cr4":"0x1001020","efer":"0xd00","#,
    #""rflags":"0x2","pkru":"0x0","pkrs":"0x7be"},"nested":{"kind":"npt","#,
    #""ncr3":"0x80000000","hostCR4":"0x20","hostEFER":"0xd00","#,
    #""physicalAddressBits":48},"memory":{"0x80000000":"0x80001007","#,
    #""0x80001000":"0x80002007","0x80001008":"0x140000087","#,
    #""0x80002000":"0x80003007","0x80002008":"0x80004007","0x80002010":"0x80005007","#,
    #""0x80003008":"0x100001007","0x80003010":"0x100002007","#,
    #""0x80003018":"0x100003007","0x80003020":"0x100004007","#,
    #""0x80003028":"0x100005007","0x80003030":"0x100006007","#,
    #""0x80003038":"0x100007007","0x80003040":"0x100008007","#,
    #""0x80003048":"0x100009007","0x80004000":"0x100200007","#,
    #""0x80004008":"0x100201007","0x80004010":"0x100202007","#,
    #""0x80004018":"0x100203007","0x80004040":"0x100208007","0x100001000":"0x6007","#,
    #""0x100001328":"0x2007","0x100001e60":"0x1007","0x100002000":"0x3007","#,
    #""0x1000034a8":"0x4007","0x100004000":"0x5007","#,
    #""0x100004008":"0x90000000004000a3","0x100004018":"0x5007","#,
    #""0x100005000":"0x800000000200067","0x100005008":"0x201027","#,
    #""0x100005010":"0x202027","0x100005028":"0x203067","0x100005048":"0x9167","#,
    #""0x100005050":"0x800000000020c023","0x100006800":"0x7007","#,
    #""0x100007158":"0x8007","0x100008000":"0x9007","0x100009000":"0x208003","#,
    #""0x100200000":"0x12345678","0x100201000":"0x12345678","#,
    #""0x100202000":"0x12345678","0x100203000":"0x12345678","#,
    #""0x100208000":"0x12345678"}}}"#,
  ].joined()

  /// Found by the nested fuzz run: linear 0x800ac0000000 is read (its walk ends at guest leaf
  /// 0x1000, the root PML5 entry itself); the NPT entries on every nested walk are rewritten
  /// with their own values (a new version each, so the search branches on every nested walk);
  /// the root PML5 entry is rewritten with A clear and no flush; the address is read again.
  static let operations = [
    #"{"op":"access","address":"0x800ac0000000","kind":"read"}"#,
    #"{"op":"write-guest","address":"0x7158","value":"0x202005"}"#,
    #"{"op":"write-host","address":"0x80002000","value":"0x80003007"}"#,
    #"{"op":"invept","type":"single-context","eptp":"0x80000000"}"#,
    #"{"op":"access","address":"0xffcce67339865000","kind":"read"}"#,
    #"{"op":"write-host","address":"0x80000000","value":"0x80001007"}"#,
    #"{"op":"paravirtual-batch","updates":[{"entry":"0x202000","value":"0x1005"}]}"#,
    #"{"op":"write-host","address":"0x80002000","value":"0x80003007"}"#,
    #"{"op":"access","address":"0x800ac0000000","kind":"read"}"#,
    #"{"op":"write-guest","address":"0x1000","value":"0x6001"}"#,
    #"{"op":"write-host","address":"0x80000000","value":"0x80001007"}"#,
    #"{"op":"access","address":"0x800ac0000000","kind":"read"}"#,
  ]

  /// With the oracle's own limit, the search reaches the TLB hit (a nested entry's versions
  /// that differ only in its A/D bits are one option); with a limit of one walk it gives up
  /// after the candidate with every entry at its current value, and must then leave what the
  /// walks it judged write possible.
  @Test(arguments: [1, Oracle.searchLimit])
  func aCachedTranslationNeedNotSetTheAccessedBitItsWalkWouldSet(limit: Int) throws {
    let replay = try Replay.load(([Self.header] + Self.operations).joined(separator: "\n"))
    let oracle = try Oracle(mode: .nested, state: replay.state)
    oracle.searchWalkLimit = limit
    let observed: [Int: TraceResult] = [
      0: .outcome(.translated(hostPhysical: 0x1_0020_8000)),
      4: .outcome(.translated(hostPhysical: 0x1_0000_2000)),
      6: .batch(status: 0, applied: 1),
      8: .outcome(.translated(hostPhysical: 0x1_0000_6000)),
      11: .outcome(.translated(hostPhysical: 0x1_0000_6000)),
    ]
    for (index, operation) in replay.operations.enumerated() {
      let result = observed[index] ?? .completed
      #expect(oracle.check(operation, TraceObservation(result)) == .agrees, "operation \(index)")
    }

    // Memory as the fast MMU leaves it: the guest stores, A set in every guest table entry
    // (allowed on any walk, §6.1) but the root PML5 entry rewritten with A clear, which the
    // last read, a TLB hit, did not set again.
    var exported = replay.state
    for (word, value) in replay.state.memory.words
    where (0x1_0000_1000..<0x1_0000_a000).contains(word) {
      exported.memory[word] = value | 0x20
    }
    exported.memory[0x1_0000_7158] = 0x20_2025
    exported.memory[0x1_0020_2000] = 0x1025
    exported.memory[0x1_0000_1000] = 0x6001
    let disagreement = oracle.compareMemory(exported)
    #expect(disagreement == nil, "\(disagreement.map { "\($0)" } ?? "")")
    #expect(
      (oracle.statistics.searchLimitReached == 0) == (limit == Oracle.searchLimit),
      "the search gives up below the oracle's own limit only")
  }
}
