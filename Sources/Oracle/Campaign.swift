import Foundation
import Machine
import ReferenceModel
import Workloads

/// How a fuzzing campaign runs (issue 5, item 5; docs/fuzzing.md, "campaigns").
public struct CampaignConfiguration: Sendable {
  /// The semantics the target is judged against.
  public var mode: OracleMode
  /// The campaign's seed: episode `e` starts from a machine and operations derived from it.
  public var seed: UInt64 = 1
  /// Operations this shard runs at most.
  public var operations = 100_000
  /// Wall-clock time this shard runs at most.
  public var timeBudget: Duration? = nil
  /// This shard's index and the number of shards: shard i runs episodes i, i + n, i + 2n, …
  public var shardIndex = 0
  /// The number of shards the campaign is split into.
  public var shardCount = 1
  /// Operations per episode: each episode starts over from a fresh machine.
  public var episodeLength = 400
  /// The operation mix (the mode's standard one by default).
  public var mix: OperationMix? = nil
  /// Compare exported memory with the oracle's every this many operations; 0 never.
  public var memoryCheckInterval = 100
  /// Prove the exported shadow state every this many operations; 0 never.
  public var proveEvery = 0
  /// Stop after this many failing episodes; 0 runs the whole budget.
  public var maxFailures = 1
  /// Shrink each failure to a minimal replay.
  public var shrink = true
  /// The IMPL choices tried first.
  public var preferredChoices: Choices<Concrete> = .kvm

  /// A configuration for `mode` with the defaults.
  public init(mode: OracleMode) { self.mode = mode }

  /// The seed of episode `episode`.
  public func episodeSeed(_ episode: Int) -> UInt64 {
    var generator = SeededGenerator(seed: seed &+ UInt64(episode) &* 0x9E37_79B9_7F4A_7C15)
    return generator.next()
  }
}

/// A failure a campaign found, with its reproducer.
public struct Finding: Sendable {
  /// The episode it was found in.
  public var episode: Int
  /// That episode's seed.
  public var episodeSeed: UInt64
  /// Operations the campaign had run before the failing one (operations to detection).
  public var operationsBefore: Int
  /// The trace as run and what it found.
  public var replay: Replay
  /// The shrunk trace, when shrinking was asked for.
  public var shrunk: Replay?
}

/// Where a campaign stands, for the progress line.
public struct CampaignProgress: Sendable {
  /// Operations run so far.
  public var operations: Int
  /// Seconds since the campaign started.
  public var seconds: Double
  /// Failures found so far.
  public var failures: Int
  /// Distinct outcome classes observed so far.
  public var outcomeClasses: Int
  /// Episodes started so far.
  public var episodes: Int

  /// `ops 1234567 (210k ops/s), episodes 3086, divergences 0, outcome classes 41`.
  public var line: String {
    let rate = seconds > 0 ? Double(operations) / seconds : 0
    return "ops \(operations) (\(Int(rate)) ops/s), episodes \(episodes), divergences "
      + "\(failures), outcome classes \(outcomeClasses)"
  }
}

/// What a campaign did.
public struct CampaignReport: Sendable {
  /// Operations run.
  public var operations = 0
  /// Episodes run.
  public var episodes = 0
  /// The numbers of the episodes run, in order (shard i of n runs i, i + n, …).
  public var episodeNumbers: [Int] = []
  /// Wall-clock seconds the campaign took.
  public var seconds = 0.0
  /// The failures found, in the order found.
  public var findings: [Finding] = []
  /// Episodes whose start state the target or the oracle refused.
  public var refusedEpisodes = 0
  /// The outcome classes observed (docs/fuzzing.md, "coverage").
  public var outcomeClasses: Set<String> = []
  /// What the oracles did, summed over episodes.
  public var statistics = OracleStatistics()
}

/// A fuzzing campaign against one target: episodes of generated operations, each judged by the
/// oracle, failures shrunk to replays (issue 5, items 3–5).
public struct Campaign {
  /// The implementation under test.
  public let target: any Target
  /// Budgets, seeds and the shard.
  public var configuration: CampaignConfiguration
  /// Called about every two seconds and at the end.
  public var progress: ((CampaignProgress) -> Void)? = nil
  /// Run on exported states every ``CampaignConfiguration/proveEvery`` operations.
  public var stateCheck: ((MachineState) -> String?)? = nil

  /// A campaign against `target`.
  public init(target: any Target, configuration: CampaignConfiguration) {
    self.target = target
    self.configuration = configuration
  }

  /// Runs the corpus, then the generated episodes of this shard, within the budgets.
  public func run() -> CampaignReport {
    var report = CampaignReport()
    let clock = ContinuousClock()
    let start = clock.now
    var lastProgress = start
    let c = configuration
    var runner = TraceRunner(target: target, mode: c.mode)
    runner.preferredChoices = c.preferredChoices
    runner.memoryCheckInterval = c.memoryCheckInterval
    runner.stateCheckInterval = c.proveEvery
    runner.stateCheck = stateCheck
    var episode = c.shardIndex
    var classes: Set<OutcomeClass.Key> = []
    func elapsed() -> Double {
      let d = clock.now - start
      return Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
    }
    func emit() {
      progress?(
        CampaignProgress(
          operations: report.operations, seconds: elapsed(), failures: report.findings.count,
          outcomeClasses: classes.count, episodes: report.episodes))
    }
    while report.operations < c.operations {
      if let budget = c.timeBudget, clock.now - start >= budget { break }
      let seed = c.episodeSeed(episode)
      let machine = FuzzMachine(mode: c.mode, seed: seed)
      var generator = TraceGenerator(machine: machine, mode: c.mode, seed: seed, mix: c.mix)
      let count = min(c.episodeLength, c.operations - report.operations)
      let run = runner.run(machine.state, count: count) { _ in generator.next() }
      report.episodes += 1
      report.episodeNumbers.append(episode)
      report.operations += run.operations.count
      report.statistics.add(run.statistics)
      for observation in run.observations {
        classes.insert(OutcomeClass.Key(observation.result))
      }
      if case .setupRefused = run.verdict { report.refusedEpisodes += 1 }
      if run.verdict.isFailure {
        let replay = Replay(
          target: target.name, mode: c.mode, seed: seed, state: machine.state, run: run)
        var finding = Finding(
          episode: episode, episodeSeed: seed,
          operationsBefore: report.operations - run.operations.count
            + (run.verdict.failureIndex ?? 0),
          replay: replay)
        if c.shrink {
          finding.shrunk = Shrinker(runner: runner).shrink(replay)
        }
        report.findings.append(finding)
        if c.maxFailures > 0 && report.findings.count >= c.maxFailures { break }
      }
      episode += c.shardCount
      if clock.now - lastProgress >= .seconds(2) {
        lastProgress = clock.now
        emit()
      }
    }
    report.seconds = elapsed()
    report.outcomeClasses = Set(classes.map(\.name))
    emit()
    return report
  }
}

extension OracleStatistics {
  /// Adds another run's counts.
  mutating func add(_ other: OracleStatistics) {
    operations += other.operations
    accesses += other.accesses
    freshAccesses += other.freshAccesses
    searchedAccesses += other.searchedAccesses
    staleAccesses += other.staleAccesses
    walks += other.walks
    searchLimitReached += other.searchLimitReached
    explainedFaultSearchesCut += other.explainedFaultSearchesCut
  }
}
