/// The spellings of numbers, sizes and durations that specs and the `check` command accept.
///
/// - integers: `4096`, `0x1000`, `0b1010`, underscores between digits (`0x7f00_0000_0000`);
/// - sizes: an integer with an optional binary unit, `16 KiB`, `2MiB`, `1 GiB` (B, KiB, MiB,
///   GiB, TiB); decimal units (`KB`) are refused, since they are ambiguous;
/// - durations: an integer with a unit, `500 ms`, `30 s`, `2 min`, `1 h`; a bare integer is
///   seconds.
public enum Quantity {
  /// What parsing an integer gave.
  enum Parsed: Equatable {
    /// A value that fits in 64 bits.
    case value(UInt64)
    /// A well-formed number wider than 64 bits.
    case tooWide
    /// A number with a minus sign.
    case negative
    /// Not a number.
    case malformed
  }

  /// Parses an integer in the syntax above.
  static func parseInteger(_ text: String) -> Parsed {
    let trimmed = text.trimmingWhitespace()
    if trimmed.hasPrefix("-") {
      return parseInteger(String(trimmed.dropFirst())) == .malformed ? .malformed : .negative
    }
    let body = trimmed.hasPrefix("+") ? Substring(trimmed.dropFirst()) : Substring(trimmed)
    var radix = 10
    var digits = body
    if body.hasPrefix("0x") || body.hasPrefix("0X") {
      radix = 16
      digits = body.dropFirst(2)
    } else if body.hasPrefix("0b") || body.hasPrefix("0B") {
      radix = 2
      digits = body.dropFirst(2)
    }
    // Underscores only between digits.
    guard let first = digits.first, let last = digits.last, first != "_", last != "_",
      !digits.contains("__")
    else { return .malformed }
    let cleaned = digits.filter { $0 != "_" }
    guard
      cleaned.allSatisfy({ $0.isASCII && $0.isHexDigit && Int(String($0), radix: radix) != nil })
    else { return .malformed }
    guard let value = UInt64(cleaned, radix: radix) else { return .tooWide }
    return .value(value)
  }

  /// The byte multiplier of each size unit.
  static let sizeUnits: [(name: String, shift: UInt64)] = [
    ("B", 0), ("KiB", 10), ("MiB", 20), ("GiB", 30), ("TiB", 40),
  ]

  /// Parses a size: an integer and an optional binary unit.
  static func parseSize(_ text: String) -> Parsed {
    let trimmed = text.trimmingWhitespace()
    for unit in sizeUnits.reversed() where trimmed.hasSuffix(unit.name) {
      let number = String(trimmed.dropLast(unit.name.count)).trimmingWhitespace()
      // "B" alone is a suffix of the other units; those were tried first.
      guard !number.isEmpty, number.last?.isLetter != true else { return .malformed }
      guard case .value(let value) = parseInteger(number) else { return parseInteger(number) }
      guard value <= UInt64.max >> unit.shift else { return .tooWide }
      return .value(value << unit.shift)
    }
    return parseInteger(trimmed)
  }

  /// Parses a duration: `500 ms`, `30 s`, `2 min`, `1 h`, or a bare number of seconds. Returns
  /// `nil` for anything else, including zero-free garbage and values beyond a year.
  public static func parseDuration(_ text: String) -> Duration? {
    let trimmed = text.trimmingWhitespace()
    let units: [(name: String, milliseconds: UInt64)] = [
      ("ms", 1), ("min", 60_000), ("s", 1000), ("h", 3_600_000),
    ]
    var number = trimmed
    var scale: UInt64 = 1000
    for unit in units where trimmed.hasSuffix(unit.name) {
      number = String(trimmed.dropLast(unit.name.count)).trimmingWhitespace()
      scale = unit.milliseconds
      break
    }
    guard !number.isEmpty, number.allSatisfy({ $0.isASCII && $0.isNumber }),
      let value = UInt64(number), value <= 366 * 24 * 3_600_000 / scale
    else { return nil }
    return .milliseconds(Int64(value * scale))
  }

  /// `1.5 s`, `250 ms`, `2 min 5 s`: a duration for people.
  public static func describe(_ duration: Duration) -> String {
    let milliseconds =
      duration.components.seconds * 1000
      + duration.components.attoseconds / 1_000_000_000_000_000
    if milliseconds < 1000 { return "\(milliseconds) ms" }
    if milliseconds < 60_000 {
      let tenths = milliseconds / 100
      return tenths % 10 == 0 ? "\(tenths / 10) s" : "\(tenths / 10).\(tenths % 10) s"
    }
    let seconds = milliseconds / 1000
    return seconds % 60 == 0 ? "\(seconds / 60) min" : "\(seconds / 60) min \(seconds % 60) s"
  }

  /// A byte count for people: `4 KiB`, `2 MiB`, `0x1800 bytes` when no unit divides it.
  static func describeSize(_ size: UInt64) -> String {
    for unit in sizeUnits.reversed() where unit.shift > 0 {
      if size >= 1 << unit.shift && size & ((1 << unit.shift) - 1) == 0 {
        return "\(size >> unit.shift) \(unit.name)"
      }
    }
    return "\(size) bytes"
  }
}

extension String {
  /// The text without leading and trailing spaces and tabs.
  func trimmingWhitespace() -> String {
    let scalars = unicodeScalars
    guard let start = scalars.firstIndex(where: { $0 != " " && $0 != "\t" }),
      let end = scalars.lastIndex(where: { $0 != " " && $0 != "\t" })
    else { return "" }
    return String(scalars[start...end])
  }
}
