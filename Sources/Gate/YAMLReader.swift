import Machine
import Yams

/// Reads typed values out of a composed YAML node, tracking the field's path from the document
/// root, so that every error names the file, the line and column of the offending value, and
/// the field (docs/spec-format.md, "what is refused").
///
/// It works on Yams' representation tree (`Node`), not on Codable, because only the tree keeps
/// each value's position. Unknown keys are always errors.
struct YAMLReader {
  /// The value being read.
  let node: Node
  /// Its path from the document root: `guest-mappings[2].gpa`.
  let path: String
  /// The file name used in errors.
  let file: String?

  /// Where the value starts.
  var position: SourcePosition? { node.mark.map(SourcePosition.init) }

  /// The value's origin, to name it in errors raised after parsing.
  var origin: Origin { Origin(position: position, field: path) }

  /// An error about this value.
  func error(_ message: String) -> FormatError {
    FormatError(file: file, position: position, field: path, message: message)
  }

  func childPath(_ key: String) -> String { path.isEmpty ? key : path + "." + key }

  /// What kind of YAML value this is, for messages: `a mapping`, `a list`, `"text"`, `nothing`.
  var kindDescription: String {
    switch node {
    case .mapping: "a mapping"
    case .sequence: "a list"
    case .alias: "an alias"
    case .scalar(let scalar):
      isNull ? "nothing" : "\"\(scalar.string)\""
    }
  }

  /// Whether the value is YAML's null: an empty plain value, `~` or `null`.
  var isNull: Bool {
    guard case .scalar(let scalar) = node, scalar.style == .plain || scalar.style == .any else {
      return false
    }
    return ["", "~", "null", "Null", "NULL"].contains(scalar.string)
  }

  // MARK: - Structure

  /// The members of this mapping; throws unless it is a mapping whose every key is a string in
  /// `allowed`.
  func mapping(allowing allowed: [String]) throws(FormatError) -> YAMLMapping {
    guard case .mapping(let mapping) = node else {
      throw error("expected a mapping of fields, got \(kindDescription)")
    }
    var members: [(key: String, value: Node)] = []
    for (keyNode, value) in mapping {
      guard case .scalar(let key) = keyNode else {
        throw FormatError(
          file: file, position: keyNode.mark.map(SourcePosition.init), field: path,
          message: "a field name must be plain text")
      }
      guard allowed.contains(key.string) else {
        throw FormatError(
          file: file, position: keyNode.mark.map(SourcePosition.init),
          field: childPath(key.string),
          message: unknownFieldMessage(key.string, allowed: allowed))
      }
      members.append((key.string, value))
    }
    return YAMLMapping(reader: self, members: members)
  }

  /// The elements of this list.
  func list() throws(FormatError) -> [YAMLReader] {
    guard case .sequence(let sequence) = node else {
      throw error("expected a list, got \(kindDescription)")
    }
    return sequence.enumerated().map {
      YAMLReader(node: $1, path: "\(path)[\($0)]", file: file)
    }
  }

  /// This value as a list, or a one-element list when it is a single value: for fields that
  /// take one name or several (`violated: soundness`, `violated: [soundness, isolation]`).
  func oneOrMore() -> [YAMLReader] {
    guard case .sequence(let sequence) = node else { return [self] }
    return sequence.enumerated().map {
      YAMLReader(node: $1, path: "\(path)[\($0)]", file: file)
    }
  }

  // MARK: - Scalars

  /// The text of this scalar; throws for mappings, lists and null.
  func text() throws(FormatError) -> String {
    guard case .scalar(let scalar) = node, !isNull else {
      throw error("expected a value, got \(kindDescription)")
    }
    return scalar.string
  }

  /// This value as a Boolean: plain `true` or `false`, nothing else (`yes`, `on` and quoted
  /// words are refused so that no spelling is guessed at).
  func bool() throws(FormatError) -> Bool {
    if case .scalar(let scalar) = node, scalar.style == .plain || scalar.style == .any {
      if scalar.string == "true" { return true }
      if scalar.string == "false" { return false }
    }
    throw error("expected true or false, got \(kindDescription)")
  }

  /// This value as an unsigned 64-bit integer: `0x` hexadecimal, `0b` binary or decimal, with
  /// underscores allowed between digits (`0x7f00_0000_0000`).
  func word() throws(FormatError) -> UInt64 {
    let text = try self.text()
    switch Quantity.parseInteger(text) {
    case .value(let value): return value
    case .tooWide: throw error("value \(text) is wider than 64 bits")
    case .negative: throw error("expected a non-negative integer, got \(text)")
    case .malformed: throw error("expected a number such as 0x1000 or 4096, got \"\(text)\"")
    }
  }

  /// This value as an integer within `range`.
  func integer(in range: ClosedRange<Int>) throws(FormatError) -> Int {
    let value = try word()
    guard value <= UInt64(range.upperBound), Int(value) >= range.lowerBound else {
      throw error("value \(value) is outside \(range.lowerBound)...\(range.upperBound)")
    }
    return Int(value)
  }

  /// This value as a byte count: a number with an optional binary unit, `16 KiB`, `2 MiB`,
  /// `1 GiB`, `0x1000`.
  func size() throws(FormatError) -> UInt64 {
    let text = try self.text()
    switch Quantity.parseSize(text) {
    case .value(let value): return value
    case .tooWide: throw error("size \(text) does not fit in 64 bits")
    case .negative: throw error("expected a size, got \(text)")
    case .malformed:
      throw error(
        "expected a size such as 4096, 16 KiB, 2 MiB or 1 GiB (units: B, KiB, MiB, GiB, TiB), "
          + "got \"\(text)\"")
    }
  }

  /// This value as a length of time: `500 ms`, `30 s`, `2 min`, `1 h`; a bare number is seconds.
  func duration() throws(FormatError) -> Duration {
    let text = try self.text()
    guard let duration = Quantity.parseDuration(text) else {
      throw error(
        "expected a duration such as 500 ms, 30 s, 2 min or 1 h, got \"\(text)\"")
    }
    return duration
  }

  /// This value as one of the names of a string enumeration.
  func choice<T: RawRepresentable & CaseIterable>(_ type: T.Type) throws(FormatError) -> T
  where T.RawValue == String {
    let text = try self.text()
    guard let value = T(rawValue: text) else {
      let names = T.allCases.map(\.rawValue)
      throw error(unknownValueMessage(text, allowed: names))
    }
    return value
  }

  /// The value as the JSON of the trace format, positions kept, so that readers written for
  /// JSON (``TraceOperation/decode(_:)``) read YAML with the same rules and messages. Plain
  /// `true`, `false` and null become JSON's; every other scalar becomes a string, which the
  /// JSON readers accept for numbers. At most `limit` values are converted, so that aliases
  /// cannot make a small file expand into an enormous value.
  func json(limit: Int = 10_000) throws(FormatError) -> JSON {
    var budget = limit
    guard let value = Self.json(node, file: file, budget: &budget) else {
      throw error("more than \(limit) values in one element (do aliases expand it?)")
    }
    return value
  }

  /// `node` as JSON, or `nil` when it holds more values than `budget`.
  private static func json(_ node: Node, file: String?, budget: inout Int) -> JSON? {
    budget -= 1
    guard budget >= 0 else { return nil }
    let position = node.mark.map(SourcePosition.init)
    switch node {
    case .mapping(let mapping):
      var members: [(key: String, value: JSON)] = []
      for pair in mapping {
        guard let value = json(pair.value, file: file, budget: &budget) else { return nil }
        members.append((pair.key.string ?? "", value))
      }
      return JSON(.object(members), position: position)
    case .sequence(let sequence):
      var items: [JSON] = []
      for item in sequence {
        guard let value = json(item, file: file, budget: &budget) else { return nil }
        items.append(value)
      }
      return JSON(.array(items), position: position)
    case .alias:
      return JSON(.null, position: position)
    case .scalar(let scalar):
      let reader = YAMLReader(node: node, path: "", file: file)
      if reader.isNull { return JSON(.null, position: position) }
      if scalar.style == .plain || scalar.style == .any {
        if scalar.string == "true" { return JSON(.bool(true), position: position) }
        if scalar.string == "false" { return JSON(.bool(false), position: position) }
      }
      return JSON(.string(scalar.string), position: position)
    }
  }
}

/// The members of one YAML mapping, looked up by name.
struct YAMLMapping {
  /// The mapping itself.
  let reader: YAMLReader
  /// Its members, in source order.
  let members: [(key: String, value: Node)]

  /// A reader for member `key`, or `nil` when it is absent. A member given as null (`key:`
  /// with nothing after it) counts as given, so the reader can say what it expected.
  func optional(_ key: String) -> YAMLReader? {
    members.first { $0.key == key }.map {
      YAMLReader(node: $0.value, path: reader.childPath(key), file: reader.file)
    }
  }

  /// A reader for member `key`; throws, at the mapping, when it is absent.
  func required(_ key: String) throws(FormatError) -> YAMLReader {
    guard let value = optional(key) else { throw reader.error("missing field \"\(key)\"") }
    return value
  }

  /// Whether member `key` is given.
  func has(_ key: String) -> Bool { members.contains { $0.key == key } }
}

/// Where a value came from: its position and field path, kept with parsed values so that
/// errors found later (overlaps, placement) still point at the source.
struct Origin: Hashable, Sendable {
  /// The position of the value.
  var position: SourcePosition?
  /// The field's path.
  var field: String

  /// Makes an origin.
  init(position: SourcePosition?, field: String) {
    self.position = position
    self.field = field
  }

  /// An error at this origin, in `file`.
  func error(_ message: String, file: String?) -> FormatError {
    FormatError(file: file, position: position, field: field, message: message)
  }
}

extension SourcePosition {
  init(_ mark: Mark) { self.init(line: mark.line, column: mark.column) }
}

// MARK: - Messages

/// `unknown field (did you mean "gpa"? expected one of: …)`.
func unknownFieldMessage(_ key: String, allowed: [String]) -> String {
  let hint = closest(to: key, in: allowed).map { "did you mean \"\($0)\"? " } ?? ""
  return "unknown field (\(hint)expected one of: \(allowed.sorted().joined(separator: ", ")))"
}

/// `unknown value "ept2" (did you mean "ept"? expected one of: none, ept, npt)`; `what` names
/// the kind of value in place of "value".
func unknownValueMessage(_ value: String, allowed: [String], what: String = "value") -> String {
  let hint = closest(to: value, in: allowed).map { "did you mean \"\($0)\"? " } ?? ""
  return "unknown \(what) \"\(value)\" (\(hint)expected one of: "
    + allowed.joined(separator: ", ") + ")"
}

/// The candidate within two edits of `word` (case ignored), if exactly one is nearest.
func closest(to word: String, in candidates: [String]) -> String? {
  let target = Array(word.lowercased())
  var best: (name: String, distance: Int)?
  var tie = false
  for candidate in candidates {
    let distance = editDistance(target, Array(candidate.lowercased()))
    guard distance <= 2 else { continue }
    if let current = best, distance == current.distance {
      tie = true
    } else if best.map({ distance < $0.distance }) ?? true {
      best = (candidate, distance)
      tie = false
    }
  }
  return tie ? nil : best?.name
}

/// The Levenshtein distance between two character arrays.
func editDistance(_ a: [Character], _ b: [Character]) -> Int {
  if a.isEmpty { return b.count }
  var previous = Array(0...b.count)
  for (i, x) in a.enumerated() {
    var current = [i + 1]
    for (j, y) in b.enumerated() {
      current.append(min(previous[j + 1] + 1, current[j] + 1, previous[j] + (x == y ? 0 : 1)))
    }
    previous = current
  }
  return previous[b.count]
}
