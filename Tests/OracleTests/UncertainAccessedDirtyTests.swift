import FastMMU
import Machine
import Oracle
import ReferenceModel
import Testing
import Workloads

/// Accessed/dirty bits the oracle cannot know (docs/fuzzing.md, "how the oracle decides"): a
/// guest entry's A/D bits decide no fault of its own walk, only whether the walk writes them;
/// that write faults only where it needs a nested right the read did not (EPT without A/D
/// flags, SEMANTICS §2.4). Elsewhere a walk that sets an uncertain bit settles it — set before
/// or set now, it is set — and where the write can fault, both resolutions stay allowed.
@Suite struct UncertainAccessedDirtyTests {
  /// A 4-level guest over 4-level NPT (every guest-table access is a write there, §3.2), a
  /// supervisor-only leaf under user-accessible directories.
  static func npt() throws -> (state: MachineState, address: UInt64, walk: Translation<Concrete>) {
    for seed in UInt64(1)...64 {
      let machine = RandomMachine(
        shape: PagingShape(guestLevels: 4, nested: .npt(levels: 4)), seed: seed)
      let model = try ConcreteModel(machine.state)
      for address in machine.addresses {
        let walk = model.translate(address, Access(.read), recording: true)
        let guest = walk.references.filter { $0.stage == .guest }
        guard guest.count == 4, case .translated = walk.outcome,
          guest.allSatisfy({ $0.value & 0x20 == 0 })
        else { continue }
        return (machine.state, address, walk)
      }
    }
    throw ScenarioError()
  }

  struct ScenarioError: Error {}

  @Test func aWalkThatSetsAnUncertainAccessedBitSettlesIt() throws {
    let (state, address, walk) = try Self.npt()
    let oracle = try Oracle(mode: .nested, state: state)
    let guest = walk.references.filter { $0.stage == .guest }
    let leaf = try #require(guest.last)
    // A user read of the page is refused by no U/S right in the leaf… make the leaf
    // supervisor-only, so the user read faults on protection: its upper A bits may or may not
    // be set (§1.8), and the oracle cannot know which.
    let restricted = leaf.value & ~(1 << 2)
    #expect(
      oracle.check(
        .writeHost(hostPhysical: leaf.address, value: restricted),
        TraceObservation(.completed)) == .agrees)
    var model = try ConcreteModel(state)
    model.state.memory[leaf.address] = restricted
    let fault = model.translate(address, Access(.read, user: true)).outcome
    guard case .pageFault = fault else {
      Issue.record("the user read faults: \(fault)")
      return
    }
    #expect(
      oracle.check(
        .invlpg(linearAddress: address), TraceObservation(.completed)) == .agrees)
    #expect(
      oracle.check(
        .access(linearAddress: address, Access(.read, user: true)),
        TraceObservation(.outcome(fault))) == .agrees)
    // A memory where no A bit was set is allowed now…
    var exported = state
    exported.memory[leaf.address] = restricted
    #expect(oracle.compareMemory(exported) == nil, "upper A bits of a faulting walk are IMPL")
    // …but a supervisor read translates, and sets A in every entry of its path, whatever the
    // faulting walk did: memory with the root entry's A clear is refused.
    let translated = model.translate(address, Access(.read)).outcome
    #expect(
      oracle.check(
        .access(linearAddress: address, Access(.read)), TraceObservation(.outcome(translated)))
        == .agrees)
    let root = try #require(guest.first)
    var missing = state
    missing.memory[leaf.address] = restricted
    for entry in guest { missing.memory[entry.address] = missing.memory[entry.address] | 0x20 }
    missing.memory[root.address] = root.value
    let disagreement = oracle.compareMemory(missing)
    #expect(disagreement?.hostPhysical == root.address, "\(String(describing: disagreement))")
  }

  /// Episode 4 of seed 1 (shadow): a write leaves a guest entry's A bit uncertain; the P2M
  /// entry of its table is made read-only (the guest-physical map has no A/D flags, so a guest
  /// A/D write needs W, a read only R); after MOV to CR3 a read translates — allowed, since the
  /// A bit may already be set and the walk then writes nothing — though a walk that reads it
  /// clear faults on the A/D write. Found when guest reads stopped branching on uncertain bits
  /// everywhere, not only where an A/D write cannot fault.
  @Test func whereAnAccessedDirtyWriteCanFaultBothResolutionsOfAnUncertainBitAreAllowed() {
    let report = CampaignTests.run(
      .shadow, operations: 400, seed: 1, shard: (4, 5), episodeLength: 400)
    #expect(report.episodeNumbers == [4])
    #expect(report.findings.isEmpty, "\(report.findings.map { $0.replay.failure?.reason ?? "" })")
  }
}

/// A value stored over keeps its uncertain bits as a possibility: a copy cached while it was
/// current may hold them set (docs/fuzzing.md, "how the oracle decides").
@Suite struct UncertainOlderValueTests {
  /// A 4-level guest over 4-level EPT with A/D flags off. The guest's upper entries for
  /// `address` have A clear; its leaf is supervisor-only (A and D set). The EPT PDE at host
  /// 0x8000_2000 maps guest-physical 0..2 MiB, where the guest tables live.
  static func state() throws -> MachineState {
    try HandWrittenState.ept(
      eptp: 0x8000_001e, cr4: 0xa0,
      memory: [
        0x8000_0000: 0x8000_1007, 0x8000_1000: 0x8000_2007,
        0x8000_2000: 0x8000_3007, 0x8000_2008: 0x8000_4007,
        0x8000_3008: 0x1_0000_1037, 0x8000_3028: 0x1_0000_5037,
        0x8000_3030: 0x1_0000_6037, 0x8000_3038: 0x1_0000_7037,
        0x8000_4040: 0x1_0020_8037,
        0x1_0000_1800: 0x5007, 0x1_0000_5000: 0x6007, 0x1_0000_6000: 0x7007,
        0x1_0000_7000: 0x20_8063,
      ])
  }
  static let address: UInt64 = 0xffff_8000_0000_0000

  @Test func aTranslationCachedWhileABitWasUncertainSurvivesAStoreOverIt() throws {
    let oracle = try Oracle(mode: .nested, state: Self.state())
    func check(_ operation: TraceOperation, _ result: TraceResult = .completed) -> Judgement {
      oracle.check(operation, TraceObservation(result))
    }
    let translated = TraceResult.outcome(.translated(hostPhysical: 0x1_0020_8000))
    // A user write faults on the supervisor leaf: the upper A bits are IMPL (§1.8), uncertain.
    let fault = TraceResult.outcome(.pageFault(errorCode: 0x7, linearAddress: Self.address))
    #expect(
      check(.access(linearAddress: Self.address, Access(.write, user: true)), fault) == .agrees)
    // The guest tables become read-only in EPT; after INVEPT a read that translates must have
    // found those A bits set (writing them would be an EPT violation).
    #expect(check(.writeHost(hostPhysical: 0x8000_2000, value: 0x8000_3001)) == .agrees)
    #expect(check(.invept(.allContexts, eptp: 0)) == .agrees)
    #expect(check(.access(linearAddress: Self.address, Access(.read)), translated) == .agrees)
    // The PDPTE is cleared without a flush: the translation cached by that read may be used.
    #expect(check(.writeHost(hostPhysical: 0x1_0000_5000, value: 0)) == .agrees)
    #expect(check(.access(linearAddress: Self.address, Access(.read)), translated) == .agrees)
    // An INVLPG drops it: the walk now meets the cleared PDPTE.
    #expect(check(.invlpg(linearAddress: Self.address)) == .agrees)
    #expect(check(.access(linearAddress: Self.address, Access(.read)), translated) != .agrees)
  }
}
