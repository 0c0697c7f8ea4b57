import Foundation
import Machine
import Testing

@testable import NestcheckCLI

#if DEBUG
  import FastMMU
  import Oracle
#endif

/// `nestcheck replay FILE` (issue 5, item 4; docs/exit-codes.md): exit 1 while the trace still
/// fails, 0 when it runs clean, 2 with one line naming the file when the file is malformed.
@Suite struct ReplayTests {
  /// The exit code of `nestcheck ARGUMENTS` run in process, and the line it prints on failure.
  static func exit(_ arguments: [String]) -> (code: Int32, message: String) {
    do {
      var command = try Nestcheck.parseAsRoot(arguments)
      try command.run()
      return (0, "")
    } catch {
      guard let failure = Nestcheck.failure(for: error) else { return (0, "") }
      return (failure.exit.rawValue, failure.message)
    }
  }

  @Test("a malformed replay file exits 2 with one line naming the file")
  func malformedFile() throws {
    let directory = try TemporaryDirectory()
    for (name, text) in [
      ("garbage.jsonl", "this is not JSON\n"),
      ("state.jsonl", "{\"format\":\"nestcheck-state\",\"version\":1}\n"),
      ("empty.jsonl", ""),
    ] {
      let path = try directory.file(name, text)
      let (code, message) = Self.exit(["replay", path])
      #expect(code == 2, "\(name)")
      #expect(message.contains(path), "\(name): \(message)")
      #expect(!message.contains("\n"), "\(name): one line")
    }
    let missing = directory.path("missing.jsonl")
    let (code, message) = Self.exit(["replay", missing])
    #expect(code == 2)
    #expect(message.contains(missing))
  }

  #if DEBUG
    /// A shrunk replay of a catalogued bug (CR0.WP ignored), written to a file.
    static func bugReplay(in directory: TemporaryDirectory) throws -> String {
      let hunt = BugHunt(bug: .writeProtectIgnored, mode: .paravirtual, seed: 1, budget: 400)
      let finding = try #require(hunt.run().findings.first)
      let replay = try #require(finding.shrunk)
      return try directory.file("wp.jsonl", replay.text)
    }

    @Test("a replay exits 1 while the bug is present and 0 against the correct target")
    func exitCodesFollowTheBug() throws {
      let directory = try TemporaryDirectory()
      let path = try Self.bugReplay(in: directory)
      #expect(Self.exit(["replay", path, "--bug", "write-protect-ignored"]).code == 1)
      #expect(Self.exit(["replay", path]).code == 0)
      #expect(Self.exit(["replay", path, "--target", "fast-mmu:paravirtual"]).code == 0)
    }

    @Test("an unknown bug name exits 2 with one line naming it")
    func unknownBug() throws {
      let directory = try TemporaryDirectory()
      let path = try Self.bugReplay(in: directory)
      let (code, message) = Self.exit(["replay", path, "--bug", "no-such-bug"])
      #expect(code == 2)
      #expect(message.contains("no-such-bug"))
    }
  #endif
}
