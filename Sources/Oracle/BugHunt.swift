// The bug catalogue exists only where FastMMU is built with NESTCHECK_BUGS: debug builds.
#if DEBUG
  import FastMMU
  import Machine
  import Prover

  /// A fixed fuzzing campaign that must find one catalogued bug (issue 5, item 6;
  /// docs/bug-catalogue.md): the fast MMU built with the bug, in one of the modes the bug
  /// applies to, fuzzed from a fixed seed within a fixed budget of operations.
  ///
  /// The catalogue's hunts (``catalogue(_:)``) are what the bug-catalogue tests and
  /// `nestcheck bench detection` run; each was chosen so that detection is quick in a debug build.
  public struct BugHunt: Sendable {
    /// The bug injected.
    public var bug: InjectedBug
    /// The mode the fast MMU runs in (one of ``InjectedBug/modes``).
    public var mode: MMUMode
    /// The campaign's seed.
    public var seed: UInt64
    /// Operations the campaign may run before the bug counts as missed.
    public var budget: Int
    /// Operations per episode: short episodes keep the failing trace, and its shrinking, short.
    public var episodeLength: Int
    /// The family of operations the campaign leans on, or `nil` for the mode's standard mix.
    public var focus: OperationMix.Focus?
    /// Prove the exported shadow state (soundness, page-table protection) every this many
    /// operations, as `nestcheck fuzz --prove-every` does; 0 never. For the bugs only a
    /// hypervisor-side invariant shows (SEMANTICS §5.5).
    public var proveEvery = 0

    /// A hunt for `bug` in `mode`, proving the exported shadow state every `proveEvery`
    /// operations (0: never).
    public init(
      bug: InjectedBug, mode: MMUMode, seed: UInt64, budget: Int = 2_000, episodeLength: Int = 40,
      focus: OperationMix.Focus? = nil, proveEvery: Int = 0
    ) {
      self.focus = focus
      self.proveEvery = proveEvery
      self.bug = bug
      self.mode = mode
      self.seed = seed
      self.budget = budget
      self.episodeLength = episodeLength
    }

    /// The fast MMU's configuration with the bug switched on.
    public var buggyConfiguration: MMUConfiguration {
      var configuration = MMUConfiguration()
      configuration.injectedBugs = [bug]
      return configuration
    }

    /// The campaign's configuration.
    public var campaignConfiguration: CampaignConfiguration {
      var configuration = CampaignConfiguration(mode: FastMMUTarget(mode: mode).oracleMode)
      configuration.seed = seed
      configuration.operations = budget
      configuration.episodeLength = episodeLength
      configuration.maxFailures = 1
      configuration.shrink = true
      configuration.mix = focus.map { .focused($0, configuration.mode) }
      configuration.proveEvery = proveEvery
      return configuration
    }

    /// Runs the campaign against the buggy fast MMU; the report holds at most one finding,
    /// shrunk (when `shrink`) to a trace that fails with the bug and runs clean without it.
    public func run(shrink: Bool = true) -> CampaignReport {
      var configuration = campaignConfiguration
      configuration.shrink = shrink
      let target = FastMMUTarget(mode: mode, configuration: buggyConfiguration)
      configuration.shrink = false
      var campaign = Campaign(target: target, configuration: configuration)
      if proveEvery > 0 { campaign.stateCheck = ShadowProof.check }
      var report = campaign.run()
      if shrink, let finding = report.findings.first {
        var shrinker = Shrinker(runner: runner(target))
        shrinker.reference = runner(FastMMUTarget(mode: mode))
        report.findings[0].shrunk = shrinker.shrink(finding.replay)
      }
      return report
    }

    /// A runner judging `target` as the campaign does: memory compared every 100 operations
    /// and after the last, proofs as asked.
    func runner(_ target: FastMMUTarget) -> TraceRunner {
      var runner = TraceRunner(target: target, mode: target.oracleMode)
      runner.memoryCheckInterval = campaignConfiguration.memoryCheckInterval
      if proveEvery > 0 {
        runner.stateCheckInterval = proveEvery
        runner.stateCheck = ShadowProof.check
      }
      return runner
    }

    /// Runs `replay`'s operations again against the fast MMU in this hunt's mode, with the bug
    /// (`buggy`) or without it, judged afresh by the oracle.
    public func rerun(_ replay: Replay, buggy: Bool) -> TraceVerdict {
      let target = FastMMUTarget(
        mode: mode, configuration: buggy ? buggyConfiguration : MMUConfiguration())
      var runner = TraceRunner(target: target, mode: replay.mode)
      runner.memoryCheckInterval = max(1, replay.operations.count)
      if proveEvery > 0 {
        runner.stateCheckInterval = max(1, replay.operations.count)
        runner.stateCheck = ShadowProof.check
      }
      return runner.run(replay.state, replay.operations).verdict
    }
  }
#endif
