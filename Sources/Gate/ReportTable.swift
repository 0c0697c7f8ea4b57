/// The summary table `nestcheck check` prints: one row per check, then the totals and the
/// gate's conclusion (docs/report-format.md, "the summary table").
///
/// ```
/// SPEC               CHECK      EXPECTED  ACTUAL     STATUS     DETAIL
/// ept-4level-basic   soundness  holds     holds      passed     proved for all addresses
/// neg-wrong-frame    soundness  violated  holds      FAILED     proved for all addresses
///
/// 2 specs, 2 checks: 1 passed, 1 failed, 0 undecided, 0 errors
/// gate: FAILED (exit 1): a verdict differs from the expected one
/// ```
public enum SummaryTable {
  /// The table as text, ending with a newline.
  public static func render(_ report: GateReport) -> String {
    var header = ["SPEC", "CHECK", "EXPECTED", "ACTUAL", "STATUS"]
    if report.timings { header.append("TIME") }
    header.append("DETAIL")
    var rows = [header]
    for result in report.results {
      var row = [
        result.spec, result.check, result.expected.rawValue, result.actual.rawValue,
        statusText(result.status),
      ]
      if report.timings { row.append(Quantity.describe(result.duration)) }
      row.append(firstLine(result.detail))
      rows.append(row)
    }
    var lines = align(rows)
    lines.append("")
    lines.append(totals(report))
    lines.append(conclusion(report))
    return lines.joined(separator: "\n") + "\n"
  }

  /// `passed`, `FAILED`, `undecided`, `ERROR`: what needs attention in capitals.
  static func statusText(_ status: CheckStatus) -> String {
    switch status {
    case .passed: "passed"
    case .failed: "FAILED"
    case .undecided: "UNDECIDED"
    case .error: "ERROR"
    }
  }

  /// `31 specs, 78 checks: 70 passed, 1 failed, 7 undecided, 0 errors`.
  static func totals(_ report: GateReport) -> String {
    let specs = report.specs.count
    let checks = report.results.count
    return "\(specs) spec\(specs == 1 ? "" : "s"), \(checks) check\(checks == 1 ? "" : "s"): "
      + "\(report.count(.passed)) passed, \(report.count(.failed)) failed, "
      + "\(report.count(.undecided)) undecided, \(report.count(.error)) "
      + "error\(report.count(.error) == 1 ? "" : "s")"
  }

  /// `gate: passed (exit 0)`, with the reason when it does not pass.
  public static func conclusion(_ report: GateReport) -> String {
    let outcome = report.outcome
    let head = "gate: \(statusText(outcome.status)) (exit \(outcome.exitCode))"
    switch outcome {
    case .passed: return head + ": every verdict as expected"
    case .failed:
      let n = report.count(.failed)
      return head + ": \(n) verdict\(n == 1 ? "" : "s") differ\(n == 1 ? "s" : "") from the "
        + "expected"
    case .error:
      let n = report.count(.error)
      return head + ": \(n) check\(n == 1 ? "" : "s") could not run (an engine failed)"
    case .undecided:
      let n = report.count(.undecided)
      return head + ": \(n) check\(n == 1 ? "" : "s") undecided; the gate never passes on "
        + "undecided"
    }
  }

  /// The first line of a detail.
  static func firstLine(_ text: String) -> String {
    String(text.split(separator: "\n", omittingEmptySubsequences: false).first ?? "")
  }

  /// Pads every column but the last to its widest cell, two spaces apart.
  static func align(_ rows: [[String]]) -> [String] {
    guard let columns = rows.first?.count else { return [] }
    var widths = Array(repeating: 0, count: columns)
    for row in rows {
      for (index, cell) in row.enumerated() { widths[index] = max(widths[index], cell.count) }
    }
    return rows.map { row in
      var line = ""
      for (index, cell) in row.enumerated() {
        if index == columns - 1 {
          line += cell
        } else {
          line += cell + String(repeating: " ", count: widths[index] - cell.count + 2)
        }
      }
      while line.hasSuffix(" ") { line.removeLast() }
      return line
    }
  }
}

extension GateOutcome {
  /// The check status of the same name, for shared wording.
  var status: CheckStatus {
    switch self {
    case .passed: .passed
    case .failed: .failed
    case .undecided: .undecided
    case .error: .error
    }
  }
}
