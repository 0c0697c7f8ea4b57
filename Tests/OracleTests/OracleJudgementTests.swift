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
}
