import Foundation
import Machine
import Testing

@testable import Gate

#if canImport(FoundationXML)
  import FoundationXML
#endif

/// The three reports: the table people read, the JUnit XML and JSON that CI systems read.
@Suite struct ReportTests {
  /// A small run with one check of every status and a detail that needs escaping.
  static let report: GateReport = {
    func result(
      _ spec: String, _ check: String, _ kind: CheckKind, _ expected: ExpectedVerdict,
      _ actual: Verdict, _ detail: String
    ) -> CheckResult {
      CheckResult(
        spec: spec, file: "specs/\(spec).yaml", check: check, kind: kind, expected: expected,
        actual: actual, detail: detail, duration: .milliseconds(1250))
    }
    let first = SpecRecord(
      name: "alpha", file: "specs/alpha.yaml", description: "A & B <shadow>",
      expectation: .holds, shadowBuild: EngineOutcome(.holds, "built by the fast MMU"),
      results: [
        result("alpha", "soundness", .property(.soundness), .holds, .holds, "proved"),
        result(
          "alpha", "fuzz-shadow", .fuzz(.shadow), .holds, .undecided,
          "budget ran out\nafter 10 operations"),
      ])
    let second = SpecRecord(
      name: "beta", file: "specs/beta.yaml", description: "", expectation: .violated(["isolation"]),
      shadowBuild: nil,
      results: [
        result(
          "beta", "isolation", .property(.isolation), .violated, .holds,
          "proved: \"every\" <address> & \u{1}"),
        result("beta", "entry-lemmas", .property(.entryLemmas), .holds, .error, "Z3 died"),
      ])
    return GateReport(specs: [first, second], timeBudget: .seconds(90), timings: false)
  }()

  // MARK: - The table

  @Test func theTableHasOneAlignedRowPerCheckThenTotalsAndTheConclusion() {
    #expect(
      SummaryTable.render(Self.report) == """
        SPEC   CHECK         EXPECTED  ACTUAL     STATUS     DETAIL
        alpha  soundness     holds     holds      passed     proved
        alpha  fuzz-shadow   holds     undecided  UNDECIDED  budget ran out
        beta   isolation     violated  holds      FAILED     proved: "every" <address> & \u{1}
        beta   entry-lemmas  holds     error      ERROR      Z3 died

        2 specs, 4 checks: 1 passed, 1 failed, 1 undecided, 1 error
        gate: FAILED (exit 1): 1 verdict differs from the expected

        """)
  }

  @Test func timingsAddATimeColumn() {
    var timed = Self.report
    timed.timings = true
    let header = SummaryTable.render(timed).split(separator: "\n").first ?? ""
    #expect(header == "SPEC   CHECK         EXPECTED  ACTUAL     STATUS     TIME   DETAIL")
    #expect(SummaryTable.render(timed).contains("passed     1.2 s  proved"))
  }

  @Test(arguments: [
    (GateOutcome.passed, "gate: passed (exit 0): every verdict as expected"),
    (.undecided, "gate: UNDECIDED (exit 3): 1 check undecided; the gate never passes on undecided"),
    (.error, "gate: ERROR (exit 4): 1 check could not run (an engine failed)"),
  ])
  func theConclusionSaysWhyTheGateDoesNotPass(_ outcome: GateOutcome, _ line: String) {
    let statuses: [Verdict] =
      switch outcome {
      case .passed: [.holds]
      case .undecided: [.holds, .undecided]
      case .error: [.holds, .error]
      case .failed: [.violated]
      }
    let results = statuses.map {
      CheckResult(
        spec: "s", file: "s.yaml", check: "soundness", kind: .property(.soundness),
        expected: .holds, actual: $0, detail: "", duration: .zero)
    }
    let report = GateReport(
      specs: [
        SpecRecord(
          name: "s", file: "s.yaml", description: "", expectation: .holds, shadowBuild: nil,
          results: results)
      ], timeBudget: nil, timings: false)
    #expect(report.outcome == outcome)
    #expect(SummaryTable.conclusion(report) == line)
  }

  // MARK: - JUnit XML

  @Test func junitIsWellFormedXMLWithOneTestcasePerCheck() throws {
    let xml = JUnitReport.render(Self.report)
    let parsed = try XMLSummary(xml)
    #expect(parsed.elements["testsuites"] == 1)
    #expect(parsed.elements["testsuite"] == 2)
    #expect(parsed.elements["testcase"] == 4)
    #expect(parsed.elements["failure"] == 1)
    #expect(parsed.elements["error"] == 2)
    #expect(parsed.elements["skipped"] == nil)
    #expect(parsed.rootAttributes["tests"] == "4")
    #expect(parsed.rootAttributes["failures"] == "1")
    #expect(parsed.rootAttributes["errors"] == "2")
    // Escaped text comes back as written, control characters as visible escapes.
    #expect(parsed.text.contains("proved: \"every\" <address> & \\u{1}"))
    #expect(parsed.attributeValues.contains("A & B <shadow>"))
    #expect(parsed.attributeValues.contains("nestcheck.alpha"))
  }

  @Test func junitUndecidedIsAnErrorNeverASkip() {
    let xml = JUnitReport.render(Self.report)
    #expect(xml.contains(#"<error type="undecided" message="expected holds, got undecided: "#))
    #expect(xml.contains(#"<error type="engine-error""#))
    #expect(xml.contains(#"<failure type="verdict" message="expected violated, got holds: "#))
    #expect(!xml.contains("<skipped"))
  }

  @Test func junitHasTimesOnlyWithTimings() throws {
    #expect(!JUnitReport.render(Self.report).contains("time="))
    var timed = Self.report
    timed.timings = true
    let xml = JUnitReport.render(timed)
    #expect(
      xml.contains(
        #"<testcase name="soundness" classname="nestcheck.alpha" file="specs/alpha.yaml" time="1.250">"#
      ))
    #expect(
      xml.contains(
        #"<testsuites name="nestcheck check" tests="4" failures="1" errors="2" skipped="0" time="5.000">"#
      ))
    _ = try XMLSummary(xml)
  }

  // MARK: - JSON

  @Test func jsonMatchesTheSchemaInDocs() throws {
    let schema = try ReportSchema.load()
    for timings in [false, true] {
      var report = Self.report
      report.timings = timings
      let document = try JSON.parse(JSONReport.render(report))
      #expect(schema.validate(document) == [], "timings: \(timings)")
    }
  }

  @Test func jsonCarriesEveryResult() throws {
    let document = try JSON.parse(JSONReport.render(Self.report))
    #expect(document["outcome"] == .string("failed"))
    #expect(document["exitCode"] == .integer(1))
    #expect(document["timeBudgetMilliseconds"] == .integer(90_000))
    #expect(document["counts"]?["undecided"] == .integer(1))
    guard case .array(let specs) = document["specs"]?.value,
      case .array(let checks) = specs[1]["checks"]?.value
    else {
      Issue.record("specs and checks are arrays")
      return
    }
    #expect(
      specs[1]["expect"]
        == .object([("verdict", .string("violated")), ("checks", .array([.string("isolation")]))]))
    #expect(specs[1]["shadowBuild"] == .null)
    #expect(checks[0]["detail"] == .string("proved: \"every\" <address> & \u{1}"))
    #expect(checks[0]["property"] == .string("isolation"))
    #expect(checks[0]["milliseconds"] == nil)
  }

  @Test func theSchemaRejectsWhatItShould() throws {
    let schema = try ReportSchema.load()
    let good = try JSON.parse(JSONReport.render(Self.report))
    guard case .object(var members) = good.value else {
      Issue.record("the report is an object")
      return
    }
    members.append((key: "extra", value: .bool(true)))
    #expect(!schema.validate(JSON(.object(members))).isEmpty)
    let wrongOutcome = try JSON.parse(
      JSONReport.render(Self.report).replacing(
        #""outcome": "failed""#, with: #""outcome": "maybe""#))
    #expect(schema.validate(wrongOutcome).contains { $0.contains("outcome") })
  }

  // MARK: - Determinism

  @Test func theSameInputsGiveTheSameBytes() throws {
    let specs = SpecLibraryTests.library
    let first = Runner(engines: ScriptedEngines().engines).run(specs)
    let second = Runner(engines: ScriptedEngines().engines).run(specs)
    #expect(SummaryTable.render(first) == SummaryTable.render(second))
    #expect(JUnitReport.render(first) == JUnitReport.render(second))
    #expect(JSONReport.render(first) == JSONReport.render(second))
  }
}

/// Counts of elements, root attributes and text of an XML document, parsed by Foundation's
/// XMLParser: parsing fails unless the document is well-formed.
struct XMLSummary {
  var elements: [String: Int] = [:]
  var rootAttributes: [String: String] = [:]
  var attributeValues: Set<String> = []
  var text = ""

  struct Malformed: Error, CustomStringConvertible {
    let description: String
  }

  init(_ xml: String) throws {
    final class Delegate: NSObject, XMLParserDelegate {
      var summary = XMLSummary(empty: ())
      func parser(
        _ parser: XMLParser, didStartElement name: String, namespaceURI: String?,
        qualifiedName: String?, attributes: [String: String] = [:]
      ) {
        if summary.elements.isEmpty { summary.rootAttributes = attributes }
        summary.elements[name, default: 0] += 1
        summary.attributeValues.formUnion(attributes.values)
      }
      func parser(_ parser: XMLParser, foundCharacters string: String) {
        summary.text += string
      }
    }
    let delegate = Delegate()
    let parser = XMLParser(data: Data(xml.utf8))
    parser.delegate = delegate
    guard parser.parse() else {
      throw Malformed(description: parser.parserError.map { "\($0)" } ?? "not well-formed")
    }
    self = delegate.summary
  }

  private init(empty: Void) {}
}

/// The JSON Schema in docs/report-format.md, and a validator for the parts of JSON Schema it
/// uses: `type`, `enum`, `required`, `properties`, `additionalProperties: false`, `items`,
/// `minimum`.
struct ReportSchema {
  let schema: JSON

  struct Missing: Error {}

  static func load() throws -> ReportSchema {
    let document = try String(
      contentsOfFile: repositoryPath("docs/report-format.md"), encoding: .utf8)
    guard let begin = document.range(of: "<!-- report-schema:begin -->\n```json\n"),
      let end = document.range(of: "```\n<!-- report-schema:end -->")
    else { throw Missing() }
    return ReportSchema(schema: try JSON.parse(String(document[begin.upperBound..<end.lowerBound])))
  }

  /// The problems with `value`, each naming its path; empty when it conforms.
  func validate(_ value: JSON) -> [String] { check(value, schema, "$") }

  private func check(_ value: JSON, _ schema: JSON, _ path: String) -> [String] {
    var problems: [String] = []
    if let type = schema["type"] {
      let allowed: [String] =
        switch type.value {
        case .string(let name): [name]
        case .array(let names):
          names.compactMap { if case .string(let n) = $0.value { n } else { nil } }
        default: []
        }
      if !allowed.contains(where: { Self.has(value, type: $0) }) {
        return ["\(path): not of type \(allowed)"]
      }
    }
    if case .array(let options) = schema["enum"]?.value, !options.contains(value) {
      problems.append("\(path): \(value.text()) is not one of the allowed values")
    }
    if case .number(let text) = value.value, case .number(let minimum) = schema["minimum"]?.value,
      let number = Double(text), let bound = Double(minimum), number < bound
    {
      problems.append("\(path): below the minimum")
    }
    if case .object(let members) = value.value {
      if case .array(let required) = schema["required"]?.value {
        for case .string(let name) in required.map(\.value) where value[name] == nil {
          problems.append("\(path): missing \(name)")
        }
      }
      for member in members {
        if let property = schema["properties"]?[member.key] {
          problems += check(member.value, property, path + "." + member.key)
        } else if schema["additionalProperties"] == .bool(false) {
          problems.append("\(path): unexpected member \(member.key)")
        }
      }
    }
    if case .array(let items) = value.value, let itemSchema = schema["items"] {
      for (index, item) in items.enumerated() {
        problems += check(item, itemSchema, "\(path)[\(index)]")
      }
    }
    return problems
  }

  private static func has(_ value: JSON, type: String) -> Bool {
    switch (value.value, type) {
    case (.object, "object"), (.array, "array"), (.string, "string"), (.bool, "boolean"),
      (.null, "null"):
      return true
    case (.number(let text), "integer"): return Int64(text) != nil
    case (.number, "number"): return true
    default: return false
    }
  }
}
