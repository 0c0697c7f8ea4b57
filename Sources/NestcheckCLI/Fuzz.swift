import ArgumentParser
import FastMMU
import Foundation
import Machine
import Oracle
import Prover

/// `nestcheck fuzz`: a differential fuzzing campaign against one target (issue 5, item 5;
/// docs/fuzzing.md).
struct Fuzz: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Fuzz an MMU implementation against the reference model (differential testing).",
    discussion: """
      Runs episodes of generated operations — accesses, guest and host stores into page \
      tables, control-register writes, INVLPG/CR3/INVPCID/INVEPT/INVVPID, paravirtual \
      batches — against the target, and judges every observation against the set the \
      architecture allows (TLB staleness until the covering flush, spurious faults, the IMPL \
      choices of SEMANTICS §8). Each failure is shrunk to a minimal trace and written as a \
      replay file (`nestcheck replay FILE`).

      Targets: fast-mmu:nested, fast-mmu:shadow, fast-mmu:paravirtual (in process), \
      process:PATH (an adapter speaking docs/adapter-protocol.md), library:PATH (a shared \
      library implementing the C ABI).

      With --corpus DIR, the replays in DIR are run first, and new failures are saved there. \
      --shard i/n runs every n-th episode from the i-th (0-based): shards are independent \
      processes that together run the campaign. A progress line goes to standard error every \
      two seconds.

      Exit codes: 0 no failure; 1 a divergence (or a target crash, hang, garbage answer, \
      memory disagreement, failed proof) was found; 2 bad input; 4 internal error.
      """
  )

  @Option(help: "The target: fast-mmu:MODE, process:PATH or library:PATH.")
  var target: String

  @Option(help: "The semantics to judge an external target by: nested, shadow, paravirtual.")
  var mode: String?

  @Option(help: "The campaign's seed.")
  var seed: UInt64 = 1

  @Option(name: .customLong("ops"), help: "Operations to run (in this shard).")
  var operations: Int = 100_000

  @Option(help: "Stop after this many seconds.")
  var timeBudget: Double?

  @Option(help: "This shard, as i/n (0-based).")
  var shard: String = "0/1"

  @Option(help: "A directory of replay files: run first, and where new failures are saved.")
  var corpus: String?

  @Option(
    help: ArgumentHelp(
      "Lean the operation mix on one family: guest-tables, nested-tables, controls or "
        + "shadow-structure (docs/bug-catalogue.md).",
      valueName: "focus"))
  var focus: String?

  @Option(help: "Prove the exported shadow state (soundness, page-table protection) every N ops.")
  var proveEvery: Int = 0

  @Option(help: "Operations per episode (each starts from a fresh machine).")
  var episodeLength: Int = 400

  @Option(help: "Compare the target's exported memory with the oracle's every N ops (0: never).")
  var memoryCheckEvery: Int = 100

  @Option(help: "Seconds an external adapter may take to answer one operation.")
  var operationTimeout: Double = 5

  @Option(help: "Stop after this many failures (0: run the whole budget).")
  var maxFailures: Int = 1

  @Option(
    name: .customLong("bug"),
    help: "Inject a catalogued bug into the fast MMU (debug builds; repeatable).")
  var bugs: [String] = []

  @Flag(help: "Do not shrink failures.")
  var noShrink = false

  @Flag(help: "Print a JSON summary on standard output.")
  var json = false

  func validate() throws {
    guard TargetSpec(target) != nil else {
      throw ValidationError(
        "unknown target '\(target)' (expected fast-mmu:nested, fast-mmu:shadow, "
          + "fast-mmu:paravirtual, process:PATH or library:PATH)")
    }
    if let mode, OracleMode(rawValue: mode) == nil {
      throw ValidationError("unknown mode '\(mode)' (expected nested, shadow or paravirtual)")
    }
    guard parseShard(shard) != nil else {
      throw ValidationError("--shard must be i/n with 0 <= i < n")
    }
    guard operations > 0, episodeLength > 0 else {
      throw ValidationError("--ops and --episode-length must be positive")
    }
    if let focus, OperationMix.Focus(rawValue: focus) == nil {
      throw ValidationError(
        "unknown focus '\(focus)' (expected "
          + OperationMix.Focus.allCases.map(\.rawValue).joined(separator: ", ") + ")")
    }
    guard proveEvery >= 0, memoryCheckEvery >= 0, maxFailures >= 0 else {
      throw ValidationError("--prove-every, --memory-check-every and --max-failures are >= 0")
    }
  }

  func run() throws {
    guard let spec = TargetSpec(target), let (index, count) = parseShard(shard) else {
      throw CommandFailure("bad --target or --shard", exit: .badInput)
    }
    let oracleMode = OracleMode(rawValue: mode ?? "") ?? spec.impliedMode ?? .nested
    let mmuConfiguration = try FuzzSupport.configuration(bugs: bugs)
    if case .process(let path) = spec, path.contains("/"),
      !FileManager.default.isExecutableFile(atPath: path)
    {
      throw CommandFailure("--target \(target): no executable at \(path)", exit: .badInput)
    }
    let made: any Target
    do {
      made = try spec.make(
        configuration: mmuConfiguration,
        operationTimeout: .milliseconds(Int(operationTimeout * 1000)))
    } catch {
      throw CommandFailure("cannot use target \(target): \(error)", exit: .badInput)
    }

    var failures: [(Replay, String?)] = []
    var runner = TraceRunner(target: made, mode: oracleMode)
    runner.memoryCheckInterval = memoryCheckEvery
    if let corpus {
      for (file, replay) in try FuzzSupport.corpus(corpus) {
        let run = runner.run(replay.state, replay.operations)
        if run.verdict.isFailure {
          printError("nestcheck: corpus \(file): still fails: \(FuzzSupport.summary(run.verdict))")
          failures.append((replay, file))
        } else {
          printError("nestcheck: corpus \(file): passes now")
        }
      }
    }

    var configuration = CampaignConfiguration(mode: oracleMode)
    configuration.seed = seed
    configuration.operations = operations
    configuration.timeBudget = timeBudget.map { .milliseconds(Int($0 * 1000)) }
    configuration.shardIndex = index
    configuration.shardCount = count
    configuration.episodeLength = episodeLength
    configuration.memoryCheckInterval = memoryCheckEvery
    configuration.proveEvery = proveEvery
    configuration.mix = focus.flatMap(OperationMix.Focus.init(rawValue:)).map {
      .focused($0, oracleMode)
    }
    configuration.shrink = !noShrink
    configuration.maxFailures = maxFailures
    var campaign = Campaign(target: made, configuration: configuration)
    campaign.progress = { progress in printError("nestcheck: " + progress.line) }
    if proveEvery > 0 { campaign.stateCheck = ShadowProof.check }
    let report = campaign.run()

    var written: [String] = []
    for finding in report.findings {
      let replay = finding.shrunk ?? finding.replay
      let text = replay.text
      if let corpus {
        let path = FuzzSupport.path(in: corpus, for: replay)
        try FuzzSupport.write(text, to: path)
        written.append(path)
      }
      if !json {
        print(FuzzSupport.describe(finding, file: written.last))
      }
    }
    if json {
      print(
        FuzzSupport.json(report, written: written, corpusFailures: failures.count).text(
          pretty: true))
    } else {
      let s = report.statistics
      print(
        "\(report.operations) operations in \(report.episodes) episodes, "
          + String(format: "%.1f s", report.seconds) + ", \(report.findings.count) failures, "
          + "\(report.outcomeClasses.count) outcome classes; oracle: \(s.freshAccesses) of "
          + "\(s.accesses) accesses explained by the fresh walk, \(s.staleAccesses) only by a "
          + "stale translation, \(s.searchLimitReached) searches given up at \(Oracle.searchLimit) "
          + "walks (accepted, their A/D writes left uncertain), \(s.explainedFaultSearchesCut) "
          + "searches of a fault the fresh walk gives stopped at "
          + "\(Oracle.explainedFaultSearchLimit) (their A/D writes left uncertain)")
    }
    if !report.findings.isEmpty || !failures.isEmpty {
      throw ExitCode(NestcheckExit.failed.rawValue)
    }
  }

  private func parseShard(_ text: String) -> (Int, Int)? {
    let parts = text.split(separator: "/")
    guard parts.count == 2, let i = Int(parts[0]), let n = Int(parts[1]), n > 0, i >= 0, i < n
    else { return nil }
    return (i, n)
  }
}
