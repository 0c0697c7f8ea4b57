/// The JUnit XML report `nestcheck check --junit FILE` writes, in the shape CI systems read
/// (Jenkins, GitLab, GitHub Actions test reporters): one `<testsuite>` per spec, one
/// `<testcase>` per check (docs/report-format.md, "JUnit XML").
///
/// A check whose verdict differs from the expected one is a `<failure>`; an undecided check and
/// an engine failure are `<error>`s, so that no CI system counts them as passing (a `<skipped>`
/// test would be). Times appear only with `--timings`.
public enum JUnitReport {
  /// The report as an XML document, ending with a newline.
  public static func render(_ report: GateReport) -> String {
    var lines = [#"<?xml version="1.0" encoding="UTF-8"?>"#]
    let failures = report.count(.failed)
    let errors = report.count(.undecided) + report.count(.error)
    var suitesAttributes = [
      ("name", "nestcheck check"), ("tests", "\(report.results.count)"),
      ("failures", "\(failures)"), ("errors", "\(errors)"), ("skipped", "0"),
    ]
    if report.timings {
      suitesAttributes.append(("time", seconds(report.results.map(\.duration))))
    }
    lines.append("<testsuites\(attributes(suitesAttributes))>")
    for spec in report.specs {
      var suite = [
        ("name", spec.name), ("tests", "\(spec.results.count)"),
        ("failures", "\(spec.results.count { $0.status == .failed })"),
        ("errors", "\(spec.results.count { $0.status == .undecided || $0.status == .error })"),
        ("skipped", "0"),
      ]
      if report.timings { suite.append(("time", seconds(spec.results.map(\.duration)))) }
      suite.append(("file", spec.file))
      lines.append("  <testsuite\(attributes(suite))>")
      lines.append("    <properties>")
      var properties = [("file", spec.file), ("expect", expectationText(spec.expectation))]
      if !spec.description.isEmpty { properties.append(("description", spec.description)) }
      if let build = spec.shadowBuild {
        properties.append(
          (
            "shadow",
            "\(build.verdict == .holds ? "built" : build.verdict.rawValue)"
              + (build.detail.isEmpty ? "" : ": " + build.detail)
          ))
      }
      for (name, value) in properties {
        lines.append("      <property\(attributes([("name", name), ("value", value)]))/>")
      }
      lines.append("    </properties>")
      for result in spec.results {
        lines.append(contentsOf: testcase(result, timings: report.timings))
      }
      lines.append("  </testsuite>")
    }
    lines.append("</testsuites>")
    return lines.joined(separator: "\n") + "\n"
  }

  /// One `<testcase>` element.
  static func testcase(_ result: CheckResult, timings: Bool) -> [String] {
    var attributes = [
      ("name", result.check), ("classname", "nestcheck.\(result.spec)"), ("file", result.file),
    ]
    if timings { attributes.append(("time", seconds([result.duration]))) }
    let open = "    <testcase\(self.attributes(attributes))>"
    let verdict = "expected \(result.expected.rawValue), got \(result.actual.rawValue)"
    let message =
      result.detail.isEmpty ? verdict : verdict + ": " + SummaryTable.firstLine(result.detail)
    let body: String
    switch result.status {
    case .passed:
      body =
        "      <system-out>\(escape(verdict + (result.detail.isEmpty ? "" : "\n" + result.detail)))</system-out>"
    case .failed:
      body =
        "      <failure\(self.attributes([("type", "verdict"), ("message", message)]))>"
        + escape(result.detail) + "</failure>"
    case .undecided:
      body =
        "      <error\(self.attributes([("type", "undecided"), ("message", message)]))>"
        + escape(result.detail) + "</error>"
    case .error:
      body =
        "      <error\(self.attributes([("type", "engine-error"), ("message", message)]))>"
        + escape(result.detail) + "</error>"
    }
    return [open, body, "    </testcase>"]
  }

  /// `holds`, or `violated: soundness, isolation`.
  static func expectationText(_ expectation: Expectation) -> String {
    switch expectation {
    case .holds: "holds"
    case .violated(let names): "violated: " + names.joined(separator: ", ")
    }
  }

  /// ` name="value" ...`, values escaped.
  static func attributes(_ pairs: [(String, String)]) -> String {
    pairs.map { " \($0.0)=\"\(escape($0.1))\"" }.joined()
  }

  /// The total in seconds with three decimals: `0.125`.
  static func seconds(_ durations: [Duration]) -> String {
    let total = durations.reduce(Duration.zero, +)
    let milliseconds =
      total.components.seconds * 1000 + total.components.attoseconds / 1_000_000_000_000_000
    let fraction = String(milliseconds % 1000)
    return "\(milliseconds / 1000)." + String(repeating: "0", count: 3 - fraction.count) + fraction
  }

  /// Text safe inside XML character data and attribute values: the five special characters
  /// as entities; control characters XML 1.0 cannot carry (all but tab, newline and carriage
  /// return) written as `\u{1b}`.
  static func escape(_ text: String) -> String {
    var result = ""
    for scalar in text.unicodeScalars {
      switch scalar {
      case "&": result += "&amp;"
      case "<": result += "&lt;"
      case ">": result += "&gt;"
      case "\"": result += "&quot;"
      case "'": result += "&apos;"
      case "\t", "\n", "\r": result.unicodeScalars.append(scalar)
      default:
        if scalar.value < 0x20 || (0xD800...0xDFFF).contains(scalar.value)
          || scalar.value == 0xFFFE || scalar.value == 0xFFFF
        {
          result += "\\u{" + String(scalar.value, radix: 16) + "}"
        } else {
          result.unicodeScalars.append(scalar)
        }
      }
    }
    return result
  }
}
