import ArgumentParser
import Gate
import Machine

/// `nestcheck check`: the correctness gate. Runs every spec under the paths and exits with the
/// verdict a CI system needs.
struct Check: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Run every spec under the paths and gate on their expected verdicts.",
    discussion: """
      A spec (YAML, docs/spec-format.md) describes a guest, its nested or shadow
      translation and the host memory it may use, names the properties to prove
      and the fast-MMU modes to fuzz, and says which verdict they must come to:
      `expect: holds`, or `expect: { violated: soundness }` for a negative spec
      (a deliberately wrong shadow or mapping).

      Every *.yaml and *.yml file under each PATH is read and built first; the
      first bad one stops the run before anything is checked (exit 2, one line
      naming FILE:LINE:COLUMN and the field). Then each check runs and the
      summary table is printed: one row per check with its expected and actual
      verdicts and its status (passed, FAILED, UNDECIDED, ERROR), then the
      totals and the gate's conclusion.

      Exit codes (docs/exit-codes.md):
        0  every verdict as expected
        1  a verdict differs from the expected one
        2  bad input: a malformed spec, a missing path, a wrong option
        3  undecided: a solver timeout, a resource limit, an exhausted budget, or
           an engine not in this build; the gate never passes on undecided
        4  an engine failed (a bug in nestcheck)
      When several apply, 1 wins over 4, and 4 over 3.

      The same inputs give the same output: specs run in path order, and times
      are reported only with --timings.

      Examples:
        nestcheck check specs/
        nestcheck check specs/ --junit out/nestcheck.xml --json out/nestcheck.json
        nestcheck check specs/negative --time-budget 10min
        nestcheck check specs/ --validate-only
        nestcheck check specs/fast-mmu/ept-4level-basic.yaml --emit-states out/states
      """
  )

  @Argument(
    help: ArgumentHelp(
      "Spec files, or directories to search for *.yaml and *.yml files at any depth.",
      discussion: "Default: specs (the directory, relative to the current one).",
      valueName: "path"))
  var paths: [String] = []

  @Option(
    name: .customLong("junit"),
    help: ArgumentHelp(
      "Also write a JUnit XML report to this file (docs/report-format.md).",
      discussion: "One <testsuite> per spec, one <testcase> per check; a differing verdict is a "
        + "<failure>, an undecided check an <error>.",
      valueName: "file"))
  var junit: String?

  @Option(
    name: .customLong("json"),
    help: ArgumentHelp(
      "Also write a JSON report to this file (docs/report-format.md has its schema).",
      valueName: "file"))
  var json: String?

  @Option(
    help: ArgumentHelp(
      "Bound the whole run: checks that would start later are undecided.",
      discussion: "A duration: 500ms, 30s, 10min, 1h; a bare number is seconds. Example: "
        + "--time-budget 25min",
      valueName: "duration"),
    transform: parseDuration)
  var timeBudget: Duration?

  @Flag(
    help: ArgumentHelp(
      "Report each check's time in the table and both reports.",
      discussion: "Times differ from run to run; without this flag the outputs do not."))
  var timings = false

  @Flag(
    help: ArgumentHelp(
      "Load and build every spec, list them with their checks, and run nothing.",
      discussion: "Exit 0 when every spec is well-formed, 2 at the first that is not."))
  var validateOnly = false

  @Option(
    help: ArgumentHelp(
      "Write each spec's built state into this directory as NAME.json.",
      discussion: "State snapshots (docs/state-format.md) that `nestcheck translate` and "
        + "`nestcheck explain` read, to see what a spec's tables do.",
      valueName: "directory"))
  var emitStates: String?

  func run() throws {
    let request = CheckRequest(
      paths: paths.isEmpty ? ["specs"] : paths, junit: junit, json: json,
      timeBudget: timeBudget, timings: timings, validateOnly: validateOnly,
      emitStates: emitStates)
    let response = try request.perform()
    if let problem = response.writeFiles() {
      throw CommandFailure(problem, exit: .badInput)
    }
    print(response.output, terminator: "")
    if let conclusion = response.conclusion {
      throw CommandFailure(
        conclusion, exit: NestcheckExit(rawValue: response.exitCode) ?? .internalError)
    }
  }
}

/// Parses `--time-budget`.
func parseDuration(_ text: String) throws -> Duration {
  guard let duration = Quantity.parseDuration(text) else {
    throw ValidationError("not a duration; write 500ms, 30s, 10min or 1h")
  }
  return duration
}
