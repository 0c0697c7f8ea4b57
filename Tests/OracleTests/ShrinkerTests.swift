import Machine
import Testing

@testable import Oracle

#if DEBUG
  import FastMMU
#endif

/// Shrinking (issue 5, item 4): a failing trace is reduced to a minimal one that fails the same
/// way — irrelevant operations removed, then every value made as simple as it can be.
@Suite struct ShrinkerTests {
  @Test("a stored value simplifies to zero first, then by clearing one set bit at a time")
  func storedValuesClearBits() {
    let simpler = Shrinker.simpler(.writeGuest(guestPhysical: 0x1008, value: 0b1010_0001))
    #expect(
      simpler
        == [0, 0b0010_0001, 0b1000_0001, 0b1010_0000].map {
          .writeGuest(guestPhysical: 0x1008, value: $0)
        })
    #expect(Shrinker.simpler(.writeHost(hostPhysical: 0x2000, value: 0)).isEmpty)
  }

  @Test("an access simplifies to its page start, then to a supervisor read")
  func accessesSimplify() {
    let access = Access(.write, user: true)
    let simpler = Shrinker.simpler(.access(linearAddress: 0x7000_0ABC, access))
    #expect(
      simpler == [
        .access(linearAddress: 0x7000_0000, access),
        .access(linearAddress: 0x7000_0ABC, Access(.read)),
        .access(linearAddress: 0x7000_0ABC, Access(.write)),
      ])
    #expect(Shrinker.simpler(.access(linearAddress: 0x7000_0000, Access(.read))).isEmpty)
  }

  @Test("a batch simplifies by dropping a request, then by simplifying one")
  func batchesSimplify() {
    let updates = [
      PageTableUpdate(entry: 0x1000, value: 1, preserveAccessedDirty: true),
      PageTableUpdate(entry: 0x1008, value: 0, preserveAccessedDirty: false),
    ]
    let simpler = Shrinker.simpler(.paravirtualBatch(updates))
    #expect(simpler.first == .paravirtualBatch([updates[1]]))
    #expect(simpler.dropFirst().first == .paravirtualBatch([updates[0]]))
    #expect(simpler.allSatisfy { $0 != .paravirtualBatch(updates) })
  }

  #if DEBUG
    /// The hunt the end-to-end tests shrink: CR0.WP ignored, which one supervisor write to a
    /// read-only page shows.
    static let hunt = BugHunt(bug: .writeProtectIgnored, mode: .paravirtual, seed: 1, budget: 400)

    @Test("shrinking removes operations that play no part and clears the access's page offset")
    func shrinkingRemovesIrrelevantOperations() throws {
      let finding = try #require(Self.hunt.run(shrink: false).findings.first)
      let original = finding.replay
      let failing = try #require(original.operations.last)
      guard case .access(let address, let access) = failing else {
        Issue.record("the failure is not at an access: \(failing)")
        return
      }
      let page = address & ~0xFFF
      // Padding that cannot matter under paravirtualization (INVVPID and INVEPT have no
      // effect there: OracleMode), and the failing access moved inside its page.
      let padding: [TraceOperation] = [
        .invvpid(.allContexts, vpid: 3, linearAddress: 0), .invept(.allContexts, eptp: 0),
      ]
      var operations: [TraceOperation] = []
      for operation in original.operations.dropLast() { operations += padding + [operation] }
      operations += padding + padding + [.access(linearAddress: page | 0x9F8, access)]
      var padded = original
      padded.operations = operations
      let runner = TraceRunner(
        target: FastMMUTarget(mode: .paravirtual, configuration: Self.hunt.buggyConfiguration),
        mode: .paravirtual)
      let run = runner.run(padded.state, padded.operations)
      #expect(run.verdict.failureIndex == operations.count - 1, "the padded trace fails last")
      padded = Replay(
        target: original.target, mode: .paravirtual, seed: original.seed, state: padded.state,
        run: run)

      let shrunk = Shrinker(runner: runner).shrink(padded)
      #expect(shrunk.failure?.kind == "divergence")
      #expect(shrunk.operations.count < operations.count)
      #expect(shrunk.operations.count <= original.operations.count)
      #expect(!shrunk.operations.contains { padding.contains($0) }, "padding removed")
      #expect(shrunk.operations.last == .access(linearAddress: page, Access(.write)))
      #expect(runner.run(shrunk.state, shrunk.operations).verdict.isFailure)
    }

    @Test("shrinking a trace that does not fail leaves it as it is")
    func passingTracesAreKept() {
      let machine = FuzzMachine(mode: .paravirtual, seed: 5)
      let runner = TraceRunner(target: FastMMUTarget(mode: .paravirtual), mode: .paravirtual)
      let operations: [TraceOperation] = [
        .access(linearAddress: machine.addresses[0], .init(.read))
      ]
      let replay = Replay(
        target: "fast-mmu:paravirtual", mode: .paravirtual, seed: 5, state: machine.state,
        run: runner.run(machine.state, operations))
      #expect(replay.failure == nil)
      #expect(Shrinker(runner: runner).shrink(replay).operations == operations)
    }
  #endif
}
