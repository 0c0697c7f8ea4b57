import Machine
import Oracle
import Testing

/// Replay files (issue 5, item 4; docs/fuzzing.md, "replay files"): what is written is read
/// back as the same trace, with the failure it reproduced — the operation, what was observed
/// and what the oracle allowed.
@Suite struct ReplayFileTests {
  /// A replay over a fuzzing machine with every kind of operation and a recorded divergence.
  static func sample() -> Replay {
    let machine = FuzzMachine(mode: .nested, seed: 7)
    var generator = TraceGenerator(machine: machine, mode: .nested, seed: 7)
    var operations = (0..<60).map { _ in generator.next() }
    operations.append(
      .paravirtualBatch([
        PageTableUpdate(entry: 0x1008, value: 0x2027, preserveAccessedDirty: true),
        PageTableUpdate(entry: 0x1010, value: 0, preserveAccessedDirty: false),
      ]))
    operations.append(.access(linearAddress: machine.addresses[0] | 0x10, Access(.fetch)))
    let failure = Replay.Failure(
      operation: operations.count - 1, kind: "divergence",
      observed: TraceObservation(.outcome(.translated(hostPhysical: 0x1_0020_0010))),
      allowed: [
        .outcome(.pageFault(errorCode: 0x11, linearAddress: machine.addresses[0] | 0x10)),
        .outcome(.eptViolation(qualification: 0x84, guestPhysical: 0x20_0010, guestLinear: nil)),
      ],
      reason: "the walk gives another outcome")
    return Replay(
      target: "fast-mmu:nested", mode: .nested, seed: 7, state: machine.state,
      operations: operations, failure: failure)
  }

  @Test("a replay written and read back has the same header, state, operations and failure")
  func roundTrip() throws {
    let replay = Self.sample()
    let loaded = try Replay.load(replay.text, file: "sample.jsonl")
    #expect(loaded.target == replay.target)
    #expect(loaded.mode == replay.mode)
    #expect(loaded.seed == replay.seed)
    #expect(loaded.state == replay.state)
    #expect(loaded.operations == replay.operations)
    let failure = try #require(loaded.failure)
    #expect(failure.operation == replay.operations.count - 1)
    #expect(failure.kind == "divergence")
    #expect(failure.observed == replay.failure?.observed)
    #expect(failure.allowed == replay.failure?.allowed)
    #expect(failure.reason == replay.failure?.reason)
    #expect(loaded.text == replay.text, "writing again gives the same text")
  }

  @Test("a replay without a failure line reads back without a failure")
  func withoutFailure() throws {
    var replay = Self.sample()
    replay.failure = nil
    replay.seed = nil
    let loaded = try Replay.load(replay.text)
    #expect(loaded.failure == nil)
    #expect(loaded.seed == nil)
    #expect(loaded.operations == replay.operations)
  }

  @Test("a malformed replay is refused with the file and line named")
  func malformed() {
    let text = Self.sample().text
    var lines = text.split(separator: "\n").map(String.init)
    lines[2] = "{\"op\":\"access\",\"address\":"
    #expect {
      try Replay.load(lines.joined(separator: "\n"), file: "bad.jsonl")
    } throws: { error in
      "\(error)".contains("bad.jsonl") && "\(error)".contains("3")
    }
    #expect(throws: FormatError.self) { try Replay.load("", file: "empty.jsonl") }
    #expect(throws: FormatError.self) {
      try Replay.load("{\"format\":\"nestcheck-state\",\"version\":1}", file: "state.jsonl")
    }
  }
}
