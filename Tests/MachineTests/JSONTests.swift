import Testing

@testable import Machine

/// The JSON reader and writer: exact numbers, member order, and syntax errors with the line and
/// column where parsing stopped.
@Suite struct JSONTests {
  static let sample = JSON.object([
    "null": .null, "true": .bool(true), "false": .bool(false),
    "max": JSON(.number("18446744073709551615")), "negative": JSON(.number("-12.5e+3")),
    "text": .string("quote \" backslash \\ newline \n tab \t control \u{1} é 𝄞"),
    "array": .array([.integer(1), .array([]), .object([:])]), "hex": .hex(0xdead_beef),
  ])

  @Test("Writing then parsing gives the same value, compact or pretty", arguments: [false, true])
  func roundTrip(pretty: Bool) throws {
    let text = Self.sample.text(pretty: pretty)
    #expect(try JSON.parse(text) == Self.sample)
  }

  @Test("Strings are written as they are, escaping only quotes, backslashes and controls")
  func stringsAreWrittenExactly() {
    #expect(JSON.string("0x7f0000001000 é 𝄞").text() == "\"0x7f0000001000 é 𝄞\"")
    #expect(JSON.string("a\"b\\c\nd\re\tf\u{1}g").text() == #""a\"b\\c\nd\re\tf\u0001g""#)
  }

  @Test("Numbers keep their text, so 64-bit values survive exactly")
  func numbersKeepTheirText() throws {
    let parsed = try JSON.parse("[18446744073709551615, 0.1, 1E5]")
    #expect(
      parsed.value
        == .array([
          JSON(.number("18446744073709551615")), JSON(.number("0.1")), JSON(.number("1e5")),
        ]))
  }

  @Test("Members keep their source order")
  func membersKeepOrder() throws {
    let parsed = try JSON.parse(#"{"b": 1, "a": 2, "c": 3}"#)
    guard case .object(let members) = parsed.value else {
      Issue.record("not an object")
      return
    }
    #expect(members.map(\.key) == ["b", "a", "c"])
  }

  @Test("Escapes decode, surrogate pairs included")
  func escapesDecode() throws {
    let parsed = try JSON.parse(#""\u00e9\ud834\udd1e\/\b\f""#)
    #expect(parsed.value == .string("é𝄞/\u{8}\u{c}"))
  }

  @Test("Every value records the line and column where it starts")
  func valuesRecordPositions() throws {
    let parsed = try JSON.parse("{\n  \"a\": [1,\n    true]\n}")
    let array = try #require(parsed["a"])
    #expect(array.position == SourcePosition(line: 2, column: 8))
    guard case .array(let items) = array.value else {
      Issue.record("not an array")
      return
    }
    #expect(items[1].position == SourcePosition(line: 3, column: 5))
  }

  struct SyntaxCase: CustomTestStringConvertible, Sendable {
    var text: String
    var line: Int
    var column: Int
    var message: String
    var testDescription: String { message }
  }

  static let syntaxErrors: [SyntaxCase] = [
    SyntaxCase(text: "", line: 1, column: 1, message: "unexpected end of text, expected a value"),
    SyntaxCase(
      text: "{\"a\": 1,}", line: 1, column: 9, message: "expected a member name in quotes"),
    SyntaxCase(text: "{\"a\" 1}", line: 1, column: 6, message: "expected ':' after member name"),
    SyntaxCase(
      text: "{\"a\": 1 \"b\"}", line: 1, column: 9, message: "expected ',' or '}' in object"),
    SyntaxCase(text: "[1, 2", line: 1, column: 6, message: "expected ',' or ']' in array"),
    SyntaxCase(text: "[tru]", line: 1, column: 5, message: "expected 'true'"),
    SyntaxCase(text: "\"abc", line: 1, column: 5, message: "unterminated string"),
    SyntaxCase(text: "\"a\u{1}\"", line: 1, column: 3, message: "control character in string"),
    SyntaxCase(text: "\"\\q\"", line: 1, column: 4, message: "unknown escape '\\q'"),
    SyntaxCase(
      text: "\"\\ud834\"", line: 1, column: 8, message: "lone high surrogate in \\u escape"),
    SyntaxCase(
      text: "{\"a\": 1}\n  x", line: 2, column: 3, message: "unexpected text after the JSON value"),
    SyntaxCase(text: "01", line: 1, column: 2, message: "unexpected text after the JSON value"),
    SyntaxCase(text: "-x", line: 1, column: 2, message: "expected a digit"),
    SyntaxCase(text: "1.", line: 1, column: 3, message: "expected a digit after '.'"),
    SyntaxCase(
      text: "{\"a\": 1, \"a\": 2}", line: 1, column: 10, message: "duplicate member \"a\""),
    SyntaxCase(
      text: "@", line: 1, column: 1, message: "unexpected character '@', expected a value"),
    SyntaxCase(
      text: String(repeating: "[", count: 600), line: 1, column: 513,
      message: "nesting deeper than 512 levels"),
  ]

  @Test("A syntax error names its line, column and cause", arguments: syntaxErrors)
  func syntaxErrorsArePositioned(_ c: SyntaxCase) {
    #expect(
      throws: JSONSyntaxError(
        message: c.message, position: SourcePosition(line: c.line, column: c.column))
    ) {
      try JSON.parse(c.text)
    }
  }
}
