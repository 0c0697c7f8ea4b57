import Machine

/// The JSON report `nestcheck check --json FILE` writes (docs/report-format.md, "JSON", with its
/// schema). Members appear in a fixed order and times only with `--timings`, so that the same
/// inputs give the same bytes.
public enum JSONReport {
  /// The `format` member.
  public static let format = "nestcheck-check-report"
  /// The `version` member.
  public static let version = 1

  /// The report as a JSON value.
  public static func json(_ report: GateReport) -> JSON {
    var members: [(key: String, value: JSON)] = [
      ("format", .string(format)),
      ("version", .integer(version)),
      ("outcome", .string(report.outcome.rawValue)),
      ("exitCode", .integer(report.outcome.exitCode)),
      ("timeBudgetMilliseconds", report.timeBudget.map { .integer(milliseconds($0)) } ?? .null),
      (
        "counts",
        .object([
          ("specs", .integer(report.specs.count)),
          ("checks", .integer(report.results.count)),
          ("passed", .integer(report.count(.passed))),
          ("failed", .integer(report.count(.failed))),
          ("undecided", .integer(report.count(.undecided))),
          ("error", .integer(report.count(.error))),
        ])
      ),
    ]
    members.append(("specs", .array(report.specs.map { spec($0, timings: report.timings) })))
    return .object(members)
  }

  /// The report as indented text, ending with a newline.
  public static func render(_ report: GateReport) -> String {
    json(report).text(pretty: true) + "\n"
  }

  static func spec(_ spec: SpecRecord, timings: Bool) -> JSON {
    let expect: JSON =
      switch spec.expectation {
      case .holds: .object([("verdict", .string("holds"))])
      case .violated(let names):
        .object([("verdict", .string("violated")), ("checks", .array(names.map(JSON.string)))])
      }
    let shadow: JSON =
      spec.shadowBuild.map {
        .object([
          ("builtBy", .string("fast-mmu")),
          ("built", .bool($0.verdict == .holds)),
          ("verdict", .string($0.verdict.rawValue)),
          ("detail", .string($0.detail)),
        ])
      } ?? .null
    return .object([
      ("name", .string(spec.name)),
      ("file", .string(spec.file)),
      ("description", .string(spec.description)),
      ("expect", expect),
      ("shadowBuild", shadow),
      ("checks", .array(spec.results.map { check($0, timings: timings) })),
    ])
  }

  static func check(_ result: CheckResult, timings: Bool) -> JSON {
    var members: [(key: String, value: JSON)] = [
      ("name", .string(result.check)),
      ("kind", .string(result.kind.category)),
    ]
    switch result.kind {
    case .property(let property): members.append(("property", .string(property.rawValue)))
    case .fuzz(let mode): members.append(("mode", .string(mode.rawValue)))
    }
    members += [
      ("expected", .string(result.expected.rawValue)),
      ("actual", .string(result.actual.rawValue)),
      ("status", .string(result.status.rawValue)),
      ("detail", .string(result.detail)),
    ]
    if timings { members.append(("milliseconds", .integer(milliseconds(result.duration)))) }
    return .object(members)
  }

  static func milliseconds(_ duration: Duration) -> Int64 {
    duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
  }
}
