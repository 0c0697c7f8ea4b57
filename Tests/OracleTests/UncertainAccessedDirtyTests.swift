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
