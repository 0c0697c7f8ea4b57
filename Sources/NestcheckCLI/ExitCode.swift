import ArgumentParser
import Foundation
import Machine

/// The exit codes every nestcheck command uses (docs/exit-codes.md).
public enum NestcheckExit: Int32, Sendable {
  /// The command did what was asked; every verdict as expected.
  case success = 0
  /// A check failed: a property was violated, a divergence was found.
  case failed = 1
  /// Bad input: a malformed file, a wrong flag, an unsupported configuration.
  case badInput = 2
  /// Undecided: a solver timeout or an exhausted budget. Never a pass.
  case undecided = 3
  /// An internal error in nestcheck itself.
  case internalError = 4
}

/// An error a command reports with one line and a chosen exit code.
public struct CommandFailure: Error, CustomStringConvertible {
  /// The line to print.
  public var message: String
  /// The exit code.
  public var exit: NestcheckExit

  /// Makes a failure.
  public init(_ message: String, exit: NestcheckExit) {
    self.message = message
    self.exit = exit
  }

  /// The message.
  public var description: String { message }
}

extension Nestcheck {
  /// Parses the arguments, runs the command, and turns every error into one line on standard
  /// error and a documented exit code: never a stack trace.
  public static func runMain(_ arguments: [String]? = nil) -> Never {
    do {
      var command = try parseAsRoot(arguments)
      try command.run()
      Self.exit()
    } catch {
      guard let failure = failure(for: error) else {
        Self.exit(withError: error)  // --help, --version: ArgumentParser prints them
      }
      if !failure.message.isEmpty { printError(failure.message) }
      Self.exit(withError: ExitCode(failure.exit.rawValue))
    }
  }

  /// The one line to print for an error and the exit code to leave with (docs/exit-codes.md);
  /// `nil` for the requests ArgumentParser answers itself (`--help`, `--version`).
  ///
  /// - ``CommandFailure``: its message and its code;
  /// - ``FormatError`` (bad input file): `file:line:column: field: message`, code 2;
  /// - a usage error (unknown option, bad value, failed validation): ArgumentParser's message
  ///   and where to find help, on one line, code 2;
  /// - an `ExitCode` a command throws: that code, nothing printed;
  /// - anything else: `internal error: …`, code 4.
  public static func failure(for error: Error) -> CommandFailure? {
    switch error {
    case let failure as CommandFailure:
      return CommandFailure("nestcheck: " + escaped(failure.message), exit: failure.exit)
    case let error as FormatError:
      return CommandFailure("nestcheck: " + escaped(error.description), exit: .badInput)
    case let code as ExitCode:
      return CommandFailure("", exit: NestcheckExit(rawValue: code.rawValue) ?? .internalError)
    default:
      let code = exitCode(for: error)
      if code == .success { return nil }
      guard code == .validationFailure else {
        return CommandFailure(
          "nestcheck: internal error: " + escaped(String(describing: error)),
          exit: .internalError)
      }
      // ArgumentParser's full message ends with "  See 'nestcheck translate --help' for more
      // information."; keep the hint, shorter, on the same line as the message.
      let hint =
        fullMessage(for: error).split(separator: "\n")
        .map { $0.trimmingCharacters(in: .whitespaces) }
        .last { $0.hasPrefix("See '") }
        .map { " (s" + $0.dropFirst().replacing(" for more information.", with: "") + ")" } ?? ""
      return CommandFailure("nestcheck: " + oneLine(message(for: error)) + hint, exit: .badInput)
    }
  }
}

/// Joins the lines of a message with "; " so that it prints as one line.
func oneLine(_ text: String) -> String {
  text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
    .filter { !$0.isEmpty }.joined(separator: "; ")
}

/// The text with line breaks and other control characters written as escapes (`\n`,
/// `\u{1b}`), so that a file name or a JSON member name cannot break the one-line rule.
func escaped(_ text: String) -> String {
  var result = ""
  for scalar in text.unicodeScalars {
    switch scalar {
    case "\n": result += "\\n"
    case "\r": result += "\\r"
    case "\t": result += "\\t"
    default:
      if scalar.properties.generalCategory == .control {
        result += "\\u{" + String(scalar.value, radix: 16) + "}"
      } else {
        result.unicodeScalars.append(scalar)
      }
    }
  }
  return result
}

/// Writes one line to standard error.
func printError(_ line: String) {
  var stderr = StandardError()
  print(line, to: &stderr)
}

struct StandardError: TextOutputStream {
  mutating func write(_ string: String) {
    FileHandle.standardError.write(Data(string.utf8))
  }
}
