import FastMMU
import Foundation
import Machine
import Oracle
import Prover

/// What `fuzz` and `replay` share: bug injection, the corpus directory, proofs, reports.
enum FuzzSupport {
  /// The fast MMU's configuration with the named catalogued bugs switched on (debug builds).
  static func configuration(bugs: [String]) throws -> MMUConfiguration {
    #if DEBUG
      var configuration = MMUConfiguration()
      for name in bugs {
        guard let bug = InjectedBug(rawValue: name) else {
          throw CommandFailure(
            "--bug: unknown bug '\(name)' (see docs/bug-catalogue.md)", exit: .badInput)
        }
        configuration.injectedBugs.insert(bug)
      }
      return configuration
    #else
      guard bugs.isEmpty else {
        throw CommandFailure(
          "--bug: this build has no injectable bugs (they exist in debug builds only)",
          exit: .badInput)
      }
      return MMUConfiguration()
    #endif
  }

  /// The replay files of a corpus directory, by name, in name order; a missing directory is
  /// an empty corpus.
  static func corpus(_ directory: String) throws -> [(String, Replay)] {
    let manager = FileManager.default
    var isDirectory: ObjCBool = false
    guard manager.fileExists(atPath: directory, isDirectory: &isDirectory) else { return [] }
    guard isDirectory.boolValue else {
      throw CommandFailure("--corpus \(directory): not a directory", exit: .badInput)
    }
    let names = try manager.contentsOfDirectory(atPath: directory)
      .filter { $0.hasSuffix(".jsonl") }.sorted()
    var result: [(String, Replay)] = []
    for name in names {
      let path = directory + "/" + name
      let text = try InputFile.text(at: path, kind: "a replay file is JSON Lines")
      result.append((path, try Replay.load(text, file: path)))
    }
    return result
  }

  /// Where a replay goes in a corpus: named by target, kind and a digest of its text.
  static func path(in directory: String, for replay: Replay) -> String {
    var hash: UInt64 = 0xCBF2_9CE4_8422_2325
    for byte in replay.text.utf8 {
      hash = (hash ^ UInt64(byte)) &* 0x100_0000_01B3
    }
    let target = replay.target.map { $0.isLetter || $0.isNumber ? $0 : "-" }
    let kind = replay.failure?.kind ?? "trace"
    return directory + "/" + String(target) + "-" + kind + "-" + String(hash, radix: 16) + ".jsonl"
  }

  /// Writes a file, creating its directory.
  static func write(_ text: String, to path: String) throws {
    let directory = (path as NSString).deletingLastPathComponent
    try FileManager.default.createDirectory(
      atPath: directory, withIntermediateDirectories: true)
    guard FileManager.default.createFile(atPath: path, contents: Data(text.utf8)) else {
      throw CommandFailure("cannot write \(path)", exit: .internalError)
    }
  }

  /// One line for a verdict.
  static func summary(_ verdict: TraceVerdict) -> String {
    switch verdict {
    case .agreed: "agrees"
    case .setupRefused(let why): "start state refused: \(why)"
    case .diverged(let index, let divergence): "operation \(index): \(divergence)"
    case .targetFailed(let index, let error): "operation \(index): target \(error)"
    case .memoryDisagrees(let index, let disagreement): "after operation \(index): \(disagreement)"
    case .proofFailed(let index, let message): "after operation \(index): \(message)"
    }
  }

  /// A finding for people: where, what, and the shrunk trace.
  static func describe(_ finding: Finding, file: String?) -> String {
    let replay = finding.shrunk ?? finding.replay
    var lines = [
      "failure in episode \(finding.episode) (seed \(hex(finding.episodeSeed))) after "
        + "\(finding.operationsBefore) operations: \(replay.failure?.kind ?? "?")"
    ]
    if let failure = replay.failure {
      lines.append("  reason: \(failure.reason)")
      if let observed = failure.observed { lines.append("  observed: \(observed.json.text())") }
      for allowed in failure.allowed {
        lines.append("  allowed:  \(TraceObservation(allowed).json.text())")
      }
    }
    lines.append(
      "  reproducer: \(replay.operations.count) operations"
        + (finding.shrunk != nil ? " (shrunk from \(finding.replay.operations.count))" : "")
        + (file.map { ", written to \($0)" } ?? ""))
    for (index, operation) in replay.operations.enumerated() {
      lines.append("    \(index): \(operation.json.text())")
    }
    return lines.joined(separator: "\n")
  }

  /// The campaign summary as JSON.
  static func json(_ report: CampaignReport, written: [String], corpusFailures: Int) -> JSON {
    let s = report.statistics
    return .object([
      ("format", .string("nestcheck-fuzz")), ("version", .integer(1)),
      ("operations", .integer(report.operations)), ("episodes", .integer(report.episodes)),
      ("seconds", JSON(.number(String(format: "%.3f", report.seconds)))),
      ("failures", .integer(report.findings.count)), ("corpusFailures", .integer(corpusFailures)),
      ("refusedEpisodes", .integer(report.refusedEpisodes)),
      ("outcomeClasses", .array(report.outcomeClasses.sorted().map { .string($0) })),
      (
        "findings",
        .array(
          report.findings.map { finding in
            let replay = finding.shrunk ?? finding.replay
            return .object([
              ("episode", .integer(finding.episode)), ("seed", .hex(finding.episodeSeed)),
              ("operationsBefore", .integer(finding.operationsBefore)),
              ("kind", .string(replay.failure?.kind ?? "")),
              ("reason", .string(replay.failure?.reason ?? "")),
              ("operations", .integer(replay.operations.count)),
              ("originalOperations", .integer(finding.replay.operations.count)),
            ])
          })
      ),
      ("written", .array(written.map { .string($0) })),
      (
        "oracle",
        .object([
          ("accesses", .integer(s.accesses)), ("freshAccesses", .integer(s.freshAccesses)),
          ("searchedAccesses", .integer(s.searchedAccesses)),
          ("staleAccesses", .integer(s.staleAccesses)), ("walks", .integer(s.walks)),
          ("searchLimitReached", .integer(s.searchLimitReached)),
          ("explainedFaultSearchesCut", .integer(s.explainedFaultSearchesCut)),
        ])
      ),
    ])
  }
}
