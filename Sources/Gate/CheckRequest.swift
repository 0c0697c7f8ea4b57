import Foundation
import Machine

/// What `nestcheck check` was asked to do, independent of the command line, so that the whole
/// command can run in-process (in tests) and the command-line layer stays a thin translation.
public struct CheckRequest: Sendable {
  /// The files and directories to take specs from.
  public var paths: [String]
  /// Where to write the JUnit XML report, if anywhere.
  public var junit: String?
  /// Where to write the JSON report, if anywhere.
  public var json: String?
  /// The bound on the whole run.
  public var timeBudget: Duration?
  /// Whether to report each check's time (which makes the reports differ from run to run).
  public var timings: Bool
  /// Load and build every spec, run nothing.
  public var validateOnly: Bool
  /// A directory to write each spec's built state into, as a state snapshot
  /// (`NAME.json`, docs/state-format.md).
  public var emitStates: String?

  /// Makes a request.
  public init(
    paths: [String], junit: String? = nil, json: String? = nil, timeBudget: Duration? = nil,
    timings: Bool = false, validateOnly: Bool = false, emitStates: String? = nil
  ) {
    self.paths = paths
    self.junit = junit
    self.json = json
    self.timeBudget = timeBudget
    self.timings = timings
    self.validateOnly = validateOnly
    self.emitStates = emitStates
  }
}

/// What a `check` produced: the text for standard output, the files to write, and the exit code.
public struct CheckResponse: Sendable {
  /// The summary table (or, with `--validate-only`, the list of specs).
  public var output: String
  /// Files to write: path and contents, in order.
  public var files: [(path: String, contents: String)]
  /// The run's report; `nil` with `--validate-only`.
  public var report: GateReport?

  /// The exit code: the gate's outcome, 0 with `--validate-only`.
  public var exitCode: Int32 { report?.outcome.exitCode ?? 0 }

  /// The one line for standard error when the gate does not pass, else `nil`.
  public var conclusion: String? {
    guard let report, report.outcome != .passed else { return nil }
    return SummaryTable.conclusion(report)
  }
}

extension CheckRequest {
  /// Loads, builds and (unless only validating) runs every spec, and renders the outputs. Bad
  /// input stops everything before any check runs, as a ``FormatError``.
  public func perform(engines: Engines = .builtIn) throws(FormatError) -> CheckResponse {
    let specs = try SpecFiles.load(paths)
    var files: [(path: String, contents: String)] = []
    if let directory = emitStates {
      for built in specs {
        let path =
          (directory.hasSuffix("/") ? directory : directory + "/") + built.spec.name
          + ".json"
        files.append((path, built.state.json.text(pretty: true) + "\n"))
      }
    }
    guard !validateOnly else {
      return CheckResponse(output: Self.listing(specs), files: files, report: nil)
    }
    let report = Runner(engines: engines, timeBudget: timeBudget, timings: timings).run(specs)
    if let junit { files.append((junit, JUnitReport.render(report))) }
    if let json { files.append((json, JSONReport.render(report))) }
    return CheckResponse(output: SummaryTable.render(report), files: files, report: report)
  }

  /// `--validate-only`'s output: each spec, its checks and its expected verdict.
  static func listing(_ specs: [BuiltSpec]) -> String {
    var rows = [["FILE", "SPEC", "EXPECT", "CHECKS"]]
    for built in specs {
      rows.append([
        built.spec.file, built.spec.name, JUnitReport.expectationText(built.spec.expectation),
        built.checks.map(\.name).joined(separator: ", "),
      ])
    }
    let checks = specs.reduce(0) { $0 + $1.checks.count }
    return
      (SummaryTable.align(rows)
      + [
        "",
        "\(specs.count) spec\(specs.count == 1 ? "" : "s"), \(checks) "
          + "check\(checks == 1 ? "" : "s"): every spec is well-formed (nothing was run)",
      ]).joined(separator: "\n") + "\n"
  }
}

extension CheckResponse {
  /// Writes ``files``, making missing directories for `--emit-states`; the first failure is
  /// returned as a message naming the path.
  public func writeFiles() -> String? {
    for (path, contents) in files {
      let url = URL(fileURLWithPath: path)
      do {
        try FileManager.default.createDirectory(
          at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(contents.utf8).write(to: url, options: .atomic)
      } catch {
        return "\(path): cannot write: \(error.localizedDescription)"
      }
    }
    return nil
  }
}
