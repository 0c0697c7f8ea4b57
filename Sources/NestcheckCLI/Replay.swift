import ArgumentParser
import FastMMU
import Foundation
import Machine
import Oracle

/// `nestcheck replay`: runs a replay file again (issue 5, item 4; docs/fuzzing.md).
struct ReplayCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "replay",
    abstract: "Run a replay file again against a target and judge it afresh.",
    discussion: """
      A replay file (written by `nestcheck fuzz`) holds a start state, operations and the \
      failure they reproduced. The operations run again against the target — the one named \
      in the file, or --target — and the oracle judges every observation afresh.

      Exit codes: 0 the trace runs clean now; 1 it still fails (the failure is printed); \
      2 bad input; 4 internal error.
      """
  )

  @Argument(help: "The replay file.")
  var file: String

  @Option(help: "The target (default: the one the file names).")
  var target: String?

  @Option(help: "The semantics to judge by (default: the file's).")
  var mode: String?

  @Option(
    name: .customLong("bug"),
    help: "Inject a catalogued bug into the fast MMU (debug builds; repeatable).")
  var bugs: [String] = []

  @Option(help: "Seconds an external adapter may take to answer one operation.")
  var operationTimeout: Double = 5

  @Flag(help: "Print every operation, what the target observed and the verdict.")
  var trace = false

  @Flag(help: "Print the result as JSON.")
  var json = false

  func validate() throws {
    if let target, TargetSpec(target) == nil {
      throw ValidationError("unknown target '\(target)'")
    }
    if let mode, OracleMode(rawValue: mode) == nil {
      throw ValidationError("unknown mode '\(mode)' (expected nested, shadow or paravirtual)")
    }
  }

  func run() throws {
    let text = try InputFile.text(at: file, kind: "a replay file is JSON Lines")
    let replay = try Replay.load(text, file: file)
    let name = target ?? replay.target
    guard let spec = TargetSpec(name) else {
      throw CommandFailure("\(file): unknown target '\(name)'; give --target", exit: .badInput)
    }
    let oracleMode = mode.flatMap { OracleMode(rawValue: $0) } ?? replay.mode
    let made: any Target
    do {
      made = try spec.make(
        configuration: try FuzzSupport.configuration(bugs: bugs),
        operationTimeout: .milliseconds(Int(operationTimeout * 1000)))
    } catch let error as TargetError {
      throw CommandFailure("cannot use target \(name): \(error)", exit: .badInput)
    }
    var runner = TraceRunner(target: made, mode: oracleMode)
    runner.memoryCheckInterval = replay.operations.count
    let run = runner.run(replay.state, replay.operations)
    if trace {
      for (index, operation) in run.operations.enumerated() {
        let observed =
          index < run.observations.count ? run.observations[index].json.text() : "(none)"
        print("\(index): \(operation.json.text())\n    -> \(observed)")
      }
    }
    if json {
      print(
        JSON.object([
          ("format", .string("nestcheck-replay-result")), ("version", .integer(1)),
          ("file", .string(file)), ("target", .string(name)),
          ("fails", .bool(run.verdict.isFailure)),
          ("verdict", .string(FuzzSupport.summary(run.verdict))),
        ]).text(pretty: true))
    } else {
      print("\(file) on \(name): " + FuzzSupport.summary(run.verdict))
    }
    if run.verdict.isFailure { throw ExitCode(NestcheckExit.failed.rawValue) }
    if case .setupRefused(let why) = run.verdict {
      throw CommandFailure("the start state was refused: \(why)", exit: .badInput)
    }
  }
}
