/// A problem with an input file: where it is (file, line, column, field) and what is wrong.
///
/// Every reader of nestcheck's formats reports bad input this way, so the command line can
/// print one clear line and exit with the input-error code.
public struct FormatError: Error, Hashable, Sendable, CustomStringConvertible {
  /// The file, as the user named it, or `nil` for text that did not come from a file.
  public var file: String?
  /// The position of the offending value, when known.
  public var position: SourcePosition?
  /// The field's path, such as `guest.cr3` or `memory["0x1000"]`; empty for the whole document.
  public var field: String
  /// What is wrong, in a few words.
  public var message: String

  /// Makes an error.
  public init(file: String? = nil, position: SourcePosition? = nil, field: String, message: String)
  {
    self.file = file
    self.position = position
    self.field = field
    self.message = message
  }

  /// `file:line:column: field: message`, leaving out what is unknown.
  public var description: String {
    var prefix = file ?? ""
    if let position { prefix += (prefix.isEmpty ? "" : ":") + position.description }
    let field = self.field.isEmpty ? "" : self.field + ": "
    return (prefix.isEmpty ? "" : prefix + ": ") + field + message
  }
}

/// Reads typed fields out of a parsed JSON value, tracking the field path and refusing unknown
/// members, so every error names the field it is about.
public struct JSONReader {
  /// The value being read.
  public let json: JSON
  /// Its path from the document root.
  public let path: String
  /// The file name used in errors.
  public let file: String?

  /// Starts reading a document.
  public init(_ json: JSON, file: String?, path: String = "") {
    self.json = json
    self.file = file
    self.path = path
  }

  /// An error about this value.
  public func error(_ message: String) -> FormatError {
    FormatError(file: file, position: json.position, field: path, message: message)
  }

  private func child(_ key: String) -> String { path.isEmpty ? key : path + "." + key }

  /// The members of this object; throws unless it is an object whose every key is in `allowed`.
  public func object(allowing allowed: Set<String>) throws(FormatError) -> [(
    key: String, value: JSON
  )] {
    guard case .object(let members) = json.value else { throw error("expected an object") }
    for member in members where !allowed.contains(member.key) {
      throw FormatError(
        file: file, position: member.value.position, field: child(member.key),
        message: "unknown field (expected one of: \(allowed.sorted().joined(separator: ", ")))")
    }
    return members
  }

  /// A reader for member `key`, or `nil` when it is absent.
  public func optional(_ key: String) -> JSONReader? {
    json[key].map { JSONReader($0, file: file, path: child(key)) }
  }

  /// A reader for member `key`; throws when it is absent.
  public func required(_ key: String) throws(FormatError) -> JSONReader {
    guard let value = optional(key) else { throw error("missing field \"\(key)\"") }
    return value
  }

  /// The elements of this array.
  public func array() throws(FormatError) -> [JSONReader] {
    guard case .array(let items) = json.value else { throw error("expected an array") }
    return items.enumerated().map { JSONReader($1, file: file, path: "\(path)[\($0)]") }
  }

  /// This value as a string.
  public func string() throws(FormatError) -> String {
    guard case .string(let s) = json.value else { throw error("expected a string") }
    return s
  }

  /// This value as a Boolean.
  public func bool() throws(FormatError) -> Bool {
    guard case .bool(let b) = json.value else { throw error("expected true or false") }
    return b
  }

  /// This value as an unsigned 64-bit integer: a JSON integer, or a string holding a `0x`
  /// hexadecimal or a decimal number. Anything wider than 64 bits is refused.
  public func word() throws(FormatError) -> UInt64 {
    switch json.value {
    case .number(let text):
      guard let value = UInt64(text) else {
        throw error(
          text.hasPrefix("-") || text.contains(".") || text.contains("e")
            ? "expected a non-negative integer, got \(text)"
            : "value \(text) is wider than 64 bits")
      }
      return value
    case .string(let text):
      guard let value = parseWord(text) else {
        throw error(
          isWellFormedNumber(text)
            ? "value \(text) is wider than 64 bits"
            : "expected a number such as \"0x1000\" or \"4096\", got \"\(text)\"")
      }
      return value
    default:
      throw error("expected a number (a JSON integer or a string such as \"0x1000\")")
    }
  }

  /// This value as an integer within `range`.
  public func integer(in range: ClosedRange<Int>) throws(FormatError) -> Int {
    let value = try word()
    guard value <= UInt64(range.upperBound), Int(value) >= range.lowerBound else {
      throw error("value \(value) is outside \(range.lowerBound)...\(range.upperBound)")
    }
    return Int(value)
  }

  /// This value as a member of a string enumeration.
  public func choice<T: RawRepresentable & CaseIterable>(_ type: T.Type) throws(FormatError) -> T
  where T.RawValue == String {
    let text = try string()
    guard let value = T(rawValue: text) else {
      let names = T.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", ")
      throw error("unknown value \"\(text)\" (expected one of: \(names))")
    }
    return value
  }
}

/// Parses `0x`-prefixed hexadecimal or plain decimal text into a 64-bit word; `nil` if the text
/// is not such a number or does not fit. Underscores may separate digits (`0x7f00_0000_0000`).
public func parseWord(_ text: String) -> UInt64? {
  let cleaned = text.filter { $0 != "_" }
  if cleaned.hasPrefix("0x") || cleaned.hasPrefix("0X") {
    let digits = cleaned.dropFirst(2)
    return digits.isEmpty ? nil : UInt64(digits, radix: 16)
  }
  return cleaned.isEmpty ? nil : UInt64(cleaned, radix: 10)
}

/// Whether the text is a well-formed number in the syntax of ``parseWord(_:)``, whatever its size.
func isWellFormedNumber(_ text: String) -> Bool {
  let cleaned = text.filter { $0 != "_" }
  if cleaned.hasPrefix("0x") || cleaned.hasPrefix("0X") {
    let digits = cleaned.dropFirst(2)
    return !digits.isEmpty && digits.allSatisfy(\.isHexDigit)
  }
  return !cleaned.isEmpty && cleaned.allSatisfy { $0.isASCII && $0.isNumber }
}
