import Foundation
import Machine
import Testing

@testable import NestcheckCLI

/// Runs nestcheck commands in-process.
enum Command {
  /// The output of `nestcheck ARGUMENTS`; throws what the command throws.
  static func output(_ arguments: [String]) throws -> String {
    let command = try Nestcheck.parseAsRoot(arguments)
    guard let rendering = command as? any RenderingCommand else {
      throw CommandFailure("not a rendering command: \(arguments)", exit: .internalError)
    }
    return try rendering.render()
  }

  /// The one line and exit code `nestcheck ARGUMENTS` fails with, or `nil` if it succeeds.
  static func failure(_ arguments: [String]) -> CommandFailure? {
    do {
      _ = try output(arguments)
      return nil
    } catch {
      return Nestcheck.failure(for: error)
    }
  }

  /// The output of a command that prints JSON, parsed.
  static func json(_ arguments: [String]) throws -> JSON {
    try JSON.parse(try output(arguments + ["--json"]))
  }
}

/// A fresh directory for files a test writes, removed when the value is.
final class TemporaryDirectory {
  let url: URL

  init() throws {
    url = FileManager.default.temporaryDirectory.appendingPathComponent(
      "nestcheck-\(UUID().uuidString.prefix(8))")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
  }

  /// Writes `contents` to `name` in the directory and returns its path.
  func file(_ name: String, _ contents: String) throws -> String {
    let path = url.appendingPathComponent(name).path
    try contents.write(toFile: path, atomically: false, encoding: .utf8)
    return path
  }

  /// The path of `name` in the directory, without creating anything.
  func path(_ name: String) -> String { url.appendingPathComponent(name).path }

  deinit { try? FileManager.default.removeItem(at: url) }
}

extension JSON {
  /// The element at `index`, if this is an array that long.
  subscript(index: Int) -> JSON? {
    guard case .array(let items) = value, items.indices.contains(index) else { return nil }
    return items[index]
  }

  /// The elements, if this is an array.
  var items: [JSON]? {
    guard case .array(let items) = value else { return nil }
    return items
  }

  /// The string, if this is one.
  var string: String? {
    guard case .string(let s) = value else { return nil }
    return s
  }

  /// The integer, if this is a number that is one.
  var int: Int? {
    guard case .number(let n) = value else { return nil }
    return Int(n)
  }

  /// The member names, if this is an object.
  var keys: [String]? {
    guard case .object(let members) = value else { return nil }
    return members.map(\.key)
  }
}
