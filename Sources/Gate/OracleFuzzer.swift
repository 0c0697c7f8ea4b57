import FastMMU
import Machine
import Oracle

/// The differential fuzzer of issue 5 as the gate's ``DifferentialFuzzer``: the fast MMU in one
/// mode (``FastMMUTarget``) against the oracle, from the spec's own state.
///
/// A campaign is a run of episodes, as `nestcheck fuzz` runs them (``CampaignConfiguration``'s
/// episode seeds, the mode's standard operation mix, the exported memory compared every
/// ``memoryCheckInterval`` operations), except that every episode starts from the spec's state
/// instead of a generated machine: the generator aims its accesses at the spec's guest
/// mappings, its table stores at the spec's guest tables and its retargets at the spec's
/// frames. The first failure ends the campaign and is shrunk to a minimal trace, shown in the
/// detail. Everything in the detail follows from the spec and the seed, never from timing.
public struct OracleFuzzer: DifferentialFuzzer {
  /// Operations per episode: each starts over from the spec's state.
  public var episodeLength: Int
  /// Compare the fast MMU's exported memory with the oracle's every this many operations.
  public var memoryCheckInterval: Int

  /// Makes the fuzzer.
  public init(episodeLength: Int = 400, memoryCheckInterval: Int = 100) {
    self.episodeLength = episodeLength
    self.memoryCheckInterval = memoryCheckInterval
  }

  /// Runs the campaign of `budget` on `mode` from `built`'s state.
  public func fuzz(
    _ mode: MMUMode, from built: BuiltSpec, budget: FuzzBudget, context: CheckContext
  ) -> EngineOutcome {
    guard let oracleMode = OracleMode(rawValue: mode.rawValue) else {
      return EngineOutcome(.error, "the oracle has no \(mode.rawValue) mode")
    }
    let clock = ContinuousClock()
    let start = clock.now
    let stop = [budget.time.map { start + $0 }, context.deadline].compactMap { $0 }.min()
    let target = FastMMUTarget(mode: mode)
    var runner = TraceRunner(target: target, mode: oracleMode)
    runner.memoryCheckInterval = memoryCheckInterval
    var configuration = CampaignConfiguration(mode: oracleMode)
    configuration.seed = budget.seed
    let machine = FuzzLayout.machine(for: built, mode: oracleMode, seed: budget.seed)
    let total = budget.operations
    var done: UInt64 = 0
    var episode = 0
    let origin = "from the spec's state, seed \(budget.seed)"
    while done < total {
      if let stop, clock.now >= stop {
        let which = budget.time != nil && stop != context.deadline ? "the spec's fuzz" : "the run's"
        return EngineOutcome(
          .undecided,
          "\(which) time budget ran out after \(done) of \(total) operations (\(episode) "
            + "episodes \(origin)), with no divergence")
      }
      let seed = configuration.episodeSeed(episode)
      var generator = TraceGenerator(machine: machine, mode: oracleMode, seed: seed)
      let count = Int(min(UInt64(episodeLength), total - done))
      let run = runner.run(machine.state, count: count) { _ in generator.next() }
      if case .setupRefused(let reason) = run.verdict {
        return EngineOutcome(
          .error, "the spec's state cannot be fuzzed in \(mode.rawValue) mode: \(reason)")
      }
      if run.verdict.isFailure {
        let replay = Replay(
          target: target.name, mode: oracleMode, seed: seed, state: machine.state, run: run)
        let shrunk = Shrinker(runner: runner).shrink(replay)
        return EngineOutcome(
          .violated,
          Self.describe(
            shrunk, found: run, episode: episode, before: done, seed: seed, origin: origin))
      }
      done += UInt64(run.operations.count)
      episode += 1
    }
    return EngineOutcome(
      .holds,
      "\(done) operations in \(episode) episode\(episode == 1 ? "" : "s") \(origin): "
        + "no divergence")
  }

  /// The detail of a failure: what went wrong, where, and the shrunk trace, one operation a
  /// line.
  static func describe(
    _ replay: Replay, found run: TraceRun, episode: Int, before: UInt64, seed: UInt64,
    origin: String
  ) -> String {
    let kind = replay.failure?.kind ?? "failure"
    let index = run.verdict.failureIndex ?? 0
    var lines = [
      "\(kind) at operation \(before + UInt64(max(0, index))) (episode \(episode), episode seed "
        + "\(hex(seed)), \(origin)): \(replay.failure?.reason ?? "\(run.verdict)")"
    ]
    if let observed = replay.failure?.observed {
      lines.append("observed: \(observed.json.text())")
    }
    for allowed in replay.failure?.allowed ?? [] {
      lines.append("allowed:  \(TraceObservation(allowed).json.text())")
    }
    lines.append(
      "reproducer (shrunk from \(run.operations.count) to \(replay.operations.count) operations):")
    for (position, operation) in replay.operations.enumerated() {
      lines.append("  \(position): \(operation.json.text())")
    }
    return lines.joined(separator: "\n")
  }
}
