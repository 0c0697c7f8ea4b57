import Foundation
import Testing

@testable import NestcheckCLI

/// `nestcheck fuzz` on bad input: one line, exit 2 (docs/exit-codes.md); and a short clean
/// campaign with proofs.
@Suite struct FuzzCommandTests {
  /// The failure `nestcheck fuzz ARGUMENTS` ends in, or `nil` when it succeeds.
  static func failure(_ arguments: [String]) -> CommandFailure? {
    do {
      var command = try Nestcheck.parseAsRoot(["fuzz"] + arguments)
      try command.run()
      return nil
    } catch {
      return Nestcheck.failure(for: error)
    }
  }

  @Test(
    "Bad input to fuzz is one line and exit 2",
    arguments: [
      ["--target", "fast-mmu:turbo"],
      ["--target", "fast-mmu:nested", "--shard", "3/2"],
      ["--target", "fast-mmu:nested", "--shard", "1"],
      ["--target", "process:/nonexistent/adapter"],
      ["--target", "library:/nonexistent/libadapter.so"],
      ["--target", "fast-mmu:nested", "--ops", "0"],
      ["--target", "fast-mmu:shadow", "--focus", "everything"],
    ])
  func badInput(arguments: [String]) throws {
    let failure = try #require(Self.failure(arguments))
    #expect(failure.exit == .badInput, "\(failure.message)")
    #expect(failure.message.hasPrefix("nestcheck: "))
    #expect(!failure.message.contains("\n"), "\(failure.message)")
  }

  @Test func aShortShadowCampaignWithProofsSucceeds() {
    let failure = Self.failure([
      "--target", "fast-mmu:shadow", "--ops", "100", "--episode-length", "50",
      "--prove-every", "50", "--seed", "3",
    ])
    #expect(failure == nil, "\(failure?.message ?? "")")
  }

  #if DEBUG
    /// The shadow-role bug needs the write-protect window only the shadow-structure focus
    /// draws: the same seed and budget find it with the focus and not without.
    @Test("--focus selects the operation mix")
    func focusSelectsTheMix() {
      let arguments = [
        "--target", "fast-mmu:shadow", "--bug", "shadow-role-ignores-write-protect", "--seed", "1",
        "--ops", "40", "--episode-length", "40", "--no-shrink",
      ]
      #expect(Self.failure(arguments) == nil)
      let focused = Self.failure(arguments + ["--focus", "shadow-structure"])
      #expect(focused?.exit == .failed, "\(focused?.message ?? "no failure")")
    }
  #endif
}
