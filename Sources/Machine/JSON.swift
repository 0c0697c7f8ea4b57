/// A JSON document as nestcheck reads and writes it: every value remembers where it stood in its
/// source, numbers keep their text (so 64-bit values survive exactly), and objects keep their
/// keys in order (so output is deterministic and duplicate keys can be refused).
///
/// Foundation's decoder reports only "not valid JSON"; the state snapshot and the trace format
/// need errors that name the line, the column and the field.
public struct JSON: Hashable, Sendable {
  /// The value itself.
  public var value: Value
  /// Where the value starts in its source, if it was parsed.
  public var position: SourcePosition?

  /// A JSON value; numbers are kept as their source text.
  public enum Value: Hashable, Sendable {
    /// `null`.
    case null
    /// `true` or `false`.
    case bool(Bool)
    /// A number, as written.
    case number(String)
    /// A string, unescaped.
    case string(String)
    /// An array.
    case array([JSON])
    /// An object with its members in source order.
    case object([(key: String, value: JSON)])

    /// Two values are equal when they have the same structure and members in the same order.
    public static func == (a: Value, b: Value) -> Bool {
      switch (a, b) {
      case (.null, .null): return true
      case (.bool(let x), .bool(let y)): return x == y
      case (.number(let x), .number(let y)): return x == y
      case (.string(let x), .string(let y)): return x == y
      case (.array(let x), .array(let y)): return x == y
      case (.object(let x), .object(let y)):
        return x.count == y.count
          && zip(x, y).allSatisfy { $0.key == $1.key && $0.value == $1.value }
      default: return false
      }
    }

    /// Hashes the structure, consistently with `==`.
    public func hash(into hasher: inout Hasher) {
      switch self {
      case .null: hasher.combine(0)
      case .bool(let b): hasher.combine(b)
      case .number(let n): hasher.combine(n)
      case .string(let s): hasher.combine(s)
      case .array(let a): hasher.combine(a)
      case .object(let members):
        for member in members {
          hasher.combine(member.key)
          hasher.combine(member.value)
        }
      }
    }
  }

  /// Wraps a value that has no source position.
  public init(_ value: Value, position: SourcePosition? = nil) {
    self.value = value
    self.position = position
  }

  /// Two JSON values are equal when their values are; positions do not count.
  public static func == (a: JSON, b: JSON) -> Bool { a.value == b.value }

  /// Hashes the value only.
  public func hash(into hasher: inout Hasher) { hasher.combine(value) }
}

/// A line and column in a source text, both counted from 1.
public struct SourcePosition: Hashable, Sendable, CustomStringConvertible {
  /// The line, from 1.
  public var line: Int
  /// The column, from 1, in Unicode scalars.
  public var column: Int

  /// Makes a position.
  public init(line: Int, column: Int) {
    self.line = line
    self.column = column
  }

  /// `line:column`.
  public var description: String { "\(line):\(column)" }
}

/// A syntax error in a JSON text, with the position where parsing stopped.
public struct JSONSyntaxError: Error, Hashable, Sendable, CustomStringConvertible {
  /// What was wrong.
  public var message: String
  /// Where it was found.
  public var position: SourcePosition

  /// `line:column: message`.
  public var description: String { "\(position): \(message)" }
}

// MARK: - Convenience constructors and accessors

extension JSON {
  /// A string value.
  public static func string(_ s: String) -> JSON { JSON(.string(s)) }
  /// A Boolean value.
  public static func bool(_ b: Bool) -> JSON { JSON(.bool(b)) }
  /// An integer value.
  public static func integer<T: BinaryInteger>(_ n: T) -> JSON { JSON(.number(String(n))) }
  /// An array value.
  public static func array(_ items: [JSON]) -> JSON { JSON(.array(items)) }
  /// An object value with members in the given order.
  public static func object(_ members: KeyValuePairs<String, JSON>) -> JSON {
    JSON(.object(members.map { (key: $0.key, value: $0.value) }))
  }
  /// An object value with members in the given order.
  public static func object(_ members: [(key: String, value: JSON)]) -> JSON {
    JSON(.object(members))
  }
  /// `null`.
  public static var null: JSON { JSON(.null) }
  /// A 64-bit value written as a `0x` hexadecimal string, the form nestcheck's formats use.
  public static func hex(_ value: UInt64) -> JSON { JSON(.string(Machine.hex(value))) }

  /// The member named `key`, if this is an object that has it.
  public subscript(key: String) -> JSON? {
    guard case .object(let members) = value else { return nil }
    return members.first { $0.key == key }?.value
  }
}

// MARK: - Parsing

extension JSON {
  /// Parses a complete JSON text; anything but white space after the value is an error.
  public static func parse(_ text: String) throws(JSONSyntaxError) -> JSON {
    var parser = JSONParser(text)
    return try parser.document()
  }
}

/// A recursive-descent parser over the text's Unicode scalars, tracking line and column.
struct JSONParser {
  private let scalars: [Unicode.Scalar]
  private var index = 0
  private var line = 1
  private var column = 1
  /// Nesting deeper than this is refused rather than risking the stack.
  private let maximumDepth = 512

  init(_ text: String) { scalars = Array(text.unicodeScalars) }

  mutating func document() throws(JSONSyntaxError) -> JSON {
    skipWhitespace()
    let value = try parseValue(depth: 0)
    skipWhitespace()
    if index < scalars.count { throw error("unexpected text after the JSON value") }
    return value
  }

  private var here: SourcePosition { SourcePosition(line: line, column: column) }

  private func error(_ message: String) -> JSONSyntaxError {
    JSONSyntaxError(message: message, position: here)
  }

  private var current: Unicode.Scalar? { index < scalars.count ? scalars[index] : nil }

  private mutating func advance() {
    if scalars[index] == "\n" {
      line += 1
      column = 1
    } else {
      column += 1
    }
    index += 1
  }

  private mutating func skipWhitespace() {
    while let c = current, c == " " || c == "\t" || c == "\n" || c == "\r" { advance() }
  }

  private mutating func expect(_ word: String) throws(JSONSyntaxError) {
    for expected in word.unicodeScalars {
      guard current == expected else { throw error("expected '\(word)'") }
      advance()
    }
  }

  private mutating func parseValue(depth: Int) throws(JSONSyntaxError) -> JSON {
    guard depth < maximumDepth else { throw error("nesting deeper than \(maximumDepth) levels") }
    let start = here
    guard let c = current else { throw error("unexpected end of text, expected a value") }
    switch c {
    case "{": return JSON(try parseObject(depth: depth), position: start)
    case "[": return JSON(try parseArray(depth: depth), position: start)
    case "\"": return JSON(.string(try parseString()), position: start)
    case "t":
      try expect("true")
      return JSON(.bool(true), position: start)
    case "f":
      try expect("false")
      return JSON(.bool(false), position: start)
    case "n":
      try expect("null")
      return JSON(.null, position: start)
    case "-", "0"..."9": return JSON(.number(try parseNumber()), position: start)
    default: throw error("unexpected character '\(c)', expected a value")
    }
  }

  private mutating func parseObject(depth: Int) throws(JSONSyntaxError) -> JSON.Value {
    advance()  // {
    var members: [(key: String, value: JSON)] = []
    var seen = Set<String>()
    skipWhitespace()
    if current == "}" {
      advance()
      return .object(members)
    }
    while true {
      skipWhitespace()
      guard current == "\"" else { throw error("expected a member name in quotes") }
      let keyPosition = here
      let key = try parseString()
      guard seen.insert(key).inserted else {
        throw JSONSyntaxError(message: "duplicate member \"\(key)\"", position: keyPosition)
      }
      skipWhitespace()
      guard current == ":" else { throw error("expected ':' after member name") }
      advance()
      skipWhitespace()
      members.append((key: key, value: try parseValue(depth: depth + 1)))
      skipWhitespace()
      switch current {
      case ",": advance()
      case "}":
        advance()
        return .object(members)
      default: throw error("expected ',' or '}' in object")
      }
    }
  }

  private mutating func parseArray(depth: Int) throws(JSONSyntaxError) -> JSON.Value {
    advance()  // [
    var items: [JSON] = []
    skipWhitespace()
    if current == "]" {
      advance()
      return .array(items)
    }
    while true {
      skipWhitespace()
      items.append(try parseValue(depth: depth + 1))
      skipWhitespace()
      switch current {
      case ",": advance()
      case "]":
        advance()
        return .array(items)
      default: throw error("expected ',' or ']' in array")
      }
    }
  }

  private mutating func parseString() throws(JSONSyntaxError) -> String {
    advance()  // opening quote
    var result = String.UnicodeScalarView()
    while true {
      guard let c = current else { throw error("unterminated string") }
      switch c {
      case "\"":
        advance()
        return String(result)
      case "\\":
        advance()
        guard let escaped = current else { throw error("unterminated escape") }
        advance()
        switch escaped {
        case "\"": result.append("\"")
        case "\\": result.append("\\")
        case "/": result.append("/")
        case "b": result.append("\u{08}")
        case "f": result.append("\u{0C}")
        case "n": result.append("\n")
        case "r": result.append("\r")
        case "t": result.append("\t")
        case "u": result.append(try parseUnicodeEscape())
        default: throw error("unknown escape '\\\(escaped)'")
        }
      default:
        guard c.value >= 0x20 else { throw error("control character in string") }
        result.append(c)
        advance()
      }
    }
  }

  private mutating func parseHexQuad() throws(JSONSyntaxError) -> UInt32 {
    var value: UInt32 = 0
    for _ in 0..<4 {
      guard let c = current, c.isASCII, let digit = UInt32(String(c), radix: 16) else {
        throw error("expected four hexadecimal digits after \\u")
      }
      value = value << 4 | digit
      advance()
    }
    return value
  }

  private mutating func parseUnicodeEscape() throws(JSONSyntaxError) -> Unicode.Scalar {
    let first = try parseHexQuad()
    if (0xD800..<0xDC00).contains(first) {
      guard current == "\\" else { throw error("lone high surrogate in \\u escape") }
      advance()
      guard current == "u" else { throw error("lone high surrogate in \\u escape") }
      advance()
      let second = try parseHexQuad()
      guard (0xDC00..<0xE000).contains(second) else { throw error("invalid surrogate pair") }
      let combined = 0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
      guard let scalar = Unicode.Scalar(combined) else { throw error("invalid \\u escape") }
      return scalar
    }
    guard let scalar = Unicode.Scalar(first) else { throw error("invalid \\u escape") }
    return scalar
  }

  private mutating func parseNumber() throws(JSONSyntaxError) -> String {
    var text = String.UnicodeScalarView()
    func isDigit(_ c: Unicode.Scalar?) -> Bool { c.map { ("0"..."9").contains($0) } ?? false }
    if current == "-" {
      text.append("-")
      advance()
    }
    guard isDigit(current) else { throw error("expected a digit") }
    if current == "0" {
      text.append("0")
      advance()
    } else {
      while let c = current, isDigit(c) {
        text.append(c)
        advance()
      }
    }
    if current == "." {
      text.append(".")
      advance()
      guard isDigit(current) else { throw error("expected a digit after '.'") }
      while let c = current, isDigit(c) {
        text.append(c)
        advance()
      }
    }
    if current == "e" || current == "E" {
      text.append("e")
      advance()
      if let c = current, c == "+" || c == "-" {
        text.append(c)
        advance()
      }
      guard isDigit(current) else { throw error("expected a digit in exponent") }
      while let c = current, isDigit(c) {
        text.append(c)
        advance()
      }
    }
    return String(text)
  }
}

// MARK: - Writing

extension JSON {
  /// The value as JSON text: compact on one line, or indented by two spaces per level.
  /// Members keep their order, so the same value always gives the same text.
  public func text(pretty: Bool = false) -> String {
    var out = ""
    write(to: &out, pretty: pretty, indent: 0)
    return out
  }

  private func write(to out: inout String, pretty: Bool, indent: Int) {
    let newline = pretty ? "\n" : ""
    let pad = { (level: Int) in pretty ? String(repeating: "  ", count: level) : "" }
    switch value {
    case .null: out += "null"
    case .bool(let b): out += b ? "true" : "false"
    case .number(let n): out += n
    case .string(let s): JSON.writeString(s, to: &out)
    case .array(let items):
      if items.isEmpty {
        out += "[]"
        return
      }
      out += "[" + newline
      for (i, item) in items.enumerated() {
        out += pad(indent + 1)
        item.write(to: &out, pretty: pretty, indent: indent + 1)
        out += (i + 1 < items.count ? "," : "") + newline
      }
      out += pad(indent) + "]"
    case .object(let members):
      if members.isEmpty {
        out += "{}"
        return
      }
      out += "{" + newline
      for (i, member) in members.enumerated() {
        out += pad(indent + 1)
        JSON.writeString(member.key, to: &out)
        out += pretty ? ": " : ":"
        member.value.write(to: &out, pretty: pretty, indent: indent + 1)
        out += (i + 1 < members.count ? "," : "") + newline
      }
      out += pad(indent) + "}"
    }
  }

  private static func writeString(_ s: String, to out: inout String) {
    out += "\""
    // Most strings (names, `0x` numbers, a snapshot's every address and value) need no escape:
    // copy them whole rather than scalar by scalar.
    if !s.utf8.contains(where: { $0 < 0x20 || $0 == 0x22 || $0 == 0x5C }) {
      out += s
      out += "\""
      return
    }
    for scalar in s.unicodeScalars {
      switch scalar {
      case "\"": out += "\\\""
      case "\\": out += "\\\\"
      case "\n": out += "\\n"
      case "\r": out += "\\r"
      case "\t": out += "\\t"
      default:
        if scalar.value < 0x20 {
          let digits = String(scalar.value, radix: 16)
          out += "\\u" + String(repeating: "0", count: 4 - digits.count) + digits
        } else {
          out.unicodeScalars.append(scalar)
        }
      }
    }
    out += "\""
  }
}
