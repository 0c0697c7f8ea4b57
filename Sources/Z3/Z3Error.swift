import CZ3

/// An error reported by Z3 (or by this layer's validation of caller input), thrown instead of
/// letting Z3's default handler end the process.
public struct Z3Error: Error, Hashable, Sendable, CustomStringConvertible {
  /// Which kind of failure Z3 reported, so callers can react without parsing `message`.
  public enum Code: Hashable, Sendable {
    /// An argument had the wrong sort (`Z3_SORT_ERROR`).
    case sortError
    /// An index was out of bounds, for example popping more scopes than exist (`Z3_IOB`).
    case indexOutOfBounds
    /// An argument was invalid (`Z3_INVALID_ARG`); also used for input this layer rejects.
    case invalidArgument
    /// SMT-LIB2 text (or a numeral string) failed to parse (`Z3_PARSER_ERROR`).
    case parserError
    /// Parser output was requested but no parse happened (`Z3_NO_PARSER`).
    case noParser
    /// A quantifier pattern was invalid (`Z3_INVALID_PATTERN`).
    case invalidPattern
    /// Z3 ran out of memory (`Z3_MEMOUT_FAIL`).
    case memoryOut
    /// A file could not be accessed (`Z3_FILE_ACCESS_ERROR`).
    case fileAccessError
    /// Z3 reported an internal fatal error (`Z3_INTERNAL_FATAL`).
    case internalFatal
    /// The API was used in an invalid state, such as asking for a model after unsat
    /// (`Z3_INVALID_USAGE`).
    case invalidUsage
    /// A reference count was decremented below zero (`Z3_DEC_REF_ERROR`).
    case decRefError
    /// Z3 raised an internal exception; the message says which (`Z3_EXCEPTION`).
    case exception
    /// A code this layer does not know, kept raw so nothing is lost.
    case other(rawValue: UInt32)

    init(_ code: Z3_error_code) {
      switch code {
      case Z3_SORT_ERROR: self = .sortError
      case Z3_IOB: self = .indexOutOfBounds
      case Z3_INVALID_ARG: self = .invalidArgument
      case Z3_PARSER_ERROR: self = .parserError
      case Z3_NO_PARSER: self = .noParser
      case Z3_INVALID_PATTERN: self = .invalidPattern
      case Z3_MEMOUT_FAIL: self = .memoryOut
      case Z3_FILE_ACCESS_ERROR: self = .fileAccessError
      case Z3_INTERNAL_FATAL: self = .internalFatal
      case Z3_INVALID_USAGE: self = .invalidUsage
      case Z3_DEC_REF_ERROR: self = .decRefError
      case Z3_EXCEPTION: self = .exception
      default: self = .other(rawValue: code.rawValue)
      }
    }
  }

  /// The kind of failure.
  public let code: Code
  /// Z3's own description of the failure (or this layer's, for rejected input).
  public let message: String

  /// Makes an error from its parts; public so callers can build expected values in tests.
  public init(code: Code, message: String) {
    self.code = code
    self.message = message
  }

  /// The code and message on one line, for logs and test failures.
  public var description: String { "Z3Error(\(code)): \(message)" }
}
