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
    } catch let failure as CommandFailure {
      printError("nestcheck: " + failure.message)
      Self.exit(withError: ExitCode(failure.exit.rawValue))
    } catch let error as FormatError {
      printError("nestcheck: " + error.description)
      Self.exit(withError: ExitCode(NestcheckExit.badInput.rawValue))
    } catch {
      let code = exitCode(for: error)
      if code == .success {
        Self.exit(withError: error)  // --help, --version: ArgumentParser prints them
      }
      printError(fullMessage(for: error))
      let mapped: NestcheckExit = code == .validationFailure ? .badInput : .internalError
      Self.exit(withError: ExitCode(mapped.rawValue))
    }
  }
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
