import Foundation
import Testing

@testable import NestcheckCLI

/// The examples in docs/ are real: the documented state loads and translates as the text says,
/// and the documented outputs are what the commands print.
@Suite struct DocumentationTests {
  static var docs: URL {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
      .deletingLastPathComponent().appendingPathComponent("docs")
  }

  /// The fenced blocks of `language` after the heading `heading` in a document under docs/.
  static func blocks(_ document: String, after heading: String, language: String) throws
    -> [String]
  {
    let text = try String(
      contentsOf: docs.appendingPathComponent(document), encoding: .utf8)
    let section = try #require(text.firstRange(of: "\n" + heading + "\n")).upperBound
    let rest = text[section...]
    let end = rest.firstRange(of: "\n## ")?.lowerBound ?? rest.endIndex
    var blocks: [String] = []
    var current: [Substring]? = nil
    for line in rest[..<end].split(separator: "\n", omittingEmptySubsequences: false) {
      if current == nil, line == "```" + language {
        current = []
      } else if current != nil, line == "```" {
        blocks.append((current ?? []).joined(separator: "\n") + "\n")
        current = nil
      } else {
        current?.append(line)
      }
    }
    return blocks
  }

  @Test("The complete example of docs/state-format.md translates as documented")
  func stateFormatExample() throws {
    let example = try #require(
      Self.blocks("state-format.md", after: "## A complete example", language: "json").first)
    let directory = try TemporaryDirectory()
    let path = try directory.file("example.json", example)
    let arguments = ["--gva", "0x7f0000001234", "--access", "read"]
    #expect(
      try Command.output(["translate", path] + arguments)
        == "translated: host physical 0x105234\n")
    let json = try Command.json(["explain", path] + arguments)
    #expect(json["referenceCount"]?.int == 24)
  }

  @Test("The sample outputs of docs/cli.md are what the commands print")
  func cliSamples() throws {
    let samples = try Self.blocks("cli.md", after: "## Samples", language: "console")
    #expect(samples.count >= 3)
    let root = Self.docs.deletingLastPathComponent().path
    for sample in samples {
      var lines = sample.split(separator: "\n", omittingEmptySubsequences: false)
      let command = try #require(lines.first)
      try #require(command.hasPrefix("$ nestcheck "))
      lines.removeFirst()
      let arguments = command.dropFirst("$ nestcheck ".count).split(separator: " ").map {
        $0.hasPrefix("examples/") ? root + "/" + $0 : String($0)
      }
      let expected = lines.joined(separator: "\n")
      let output = try Command.output(arguments).replacing(root + "/", with: "")
      #expect(output == expected, "\(command)")
    }
  }
}
