import Foundation
import Machine
import Testing
import Workloads
import Z3

@testable import NestcheckCLI

/// `nestcheck prove` end to end (docs/prover.md): its verdicts and exit codes on the shadow
/// examples, property selection, the SMT-LIB2 it writes, undecided proofs, and the inputs it
/// must refuse or survive.
@Suite("nestcheck prove")
struct ProveTests {
  /// What a prove run gave: its report's text and exit code, or the one line and code it
  /// failed with.
  enum Run {
    case finished(text: String, exit: NestcheckExit)
    case failed(CommandFailure)

    var exit: NestcheckExit {
      switch self {
      case .finished(_, let exit): exit
      case .failed(let failure): failure.exit
      }
    }

    var text: String {
      switch self {
      case .finished(let text, _): text
      case .failed(let failure): failure.message
      }
    }
  }

  /// Runs `nestcheck prove ARGUMENTS` in-process.
  static func prove(_ arguments: [String]) -> Run {
    do {
      guard let command = try Nestcheck.parseAsRoot(["prove"] + arguments) as? Prove else {
        return .failed(CommandFailure("not prove: \(arguments)", exit: .internalError))
      }
      let (text, exit) = try command.report()
      return .finished(text: text, exit: exit)
    } catch {
      return .failed(
        Nestcheck.failure(for: error) ?? CommandFailure("no failure", exit: .internalError))
    }
  }

  static let correct = ExampleStates.path("shadow-correct.json")
  static let broken = ExampleStates.path("shadow-broken.json")
  static let everyProperty = [
    "soundness", "accessed-dirty", "page-table-protection", "isolation", "fault-classification",
    "entry-lemmas",
  ]

  /// The verdict line of `property` in a text report.
  static func verdict(_ property: String, in text: String) -> String? {
    text.split(separator: "\n").first { $0.hasPrefix(property + " ") }
      .map { $0.dropFirst(property.count).trimmingCharacters(in: .whitespaces) }
  }

  /// The property → verdict pairs of a JSON report.
  static func verdicts(_ json: JSON) -> [String: String] {
    var result: [String: String] = [:]
    for item in json["results"]?.items ?? [] {
      if let name = item["property"]?.string { result[name] = item["verdict"]?.string }
    }
    return result
  }

  // MARK: Verdicts and exit codes

  @Test("A correct shadow: every property proved, exit 0")
  func correctShadowProves() {
    let run = Self.prove([Self.correct])
    #expect(run.exit == .success, "\(run.text)")
    for property in Self.everyProperty {
      #expect(Self.verdict(property, in: run.text) == "proved", "\(property): \(run.text)")
    }
  }

  @Test("A correct shadow in JSON: every property's verdict is proved")
  func correctShadowJSON() throws {
    let run = Self.prove([Self.correct, "--json"])
    #expect(run.exit == .success)
    let json = try JSON.parse(run.text)
    #expect(json["format"]?.string == "nestcheck-prove")
    #expect(
      Self.verdicts(json)
        == Dictionary(
          uniqueKeysWithValues: Self.everyProperty.map {
            ($0, "proved")
          }))
    #expect(json["statistics"]?["queries"]?.int != nil)
  }

  @Test("A broken shadow: soundness violated with both walks side by side, exit 1")
  func brokenShadowIsViolated() {
    let run = Self.prove([Self.broken])
    #expect(run.exit == .failed)
    #expect(Self.verdict("soundness", in: run.text) == "VIOLATED")
    #expect(run.text.contains("counterexample: "))
    #expect(run.text.contains("shadow (hardware walk)"))
    #expect(run.text.contains("guest-plus-host"))
    // The first difference is marked on exactly one row of the walk table, and explained.
    let marked = run.text.split(separator: "\n").filter { $0.hasPrefix("  >>  ") }
    #expect(marked.count == 1, "\(run.text)")
    #expect(run.text.contains(">> marks the first point where the walks differ"))
    for property in Self.everyProperty where property != "soundness" {
      #expect(Self.verdict(property, in: run.text) == "proved", "\(property)")
    }
  }

  @Test("A broken shadow in JSON: the counterexample's address, access and summary")
  func brokenShadowJSON() throws {
    let run = Self.prove([Self.broken, "--json", "--property", "soundness"])
    #expect(run.exit == .failed)
    let json = try JSON.parse(run.text)
    let results = try #require(json["results"]?.items)
    #expect(results.count == 1)
    #expect(results.first?["verdict"]?.string == "violated")
    let counterexample = try #require(results.first?["counterexample"])
    #expect(counterexample["gva"]?.string?.hasPrefix("0x") == true)
    #expect(counterexample["access"] != nil)
    #expect(counterexample["summary"]?.string?.isEmpty == false)
  }

  @Test("--property proves exactly the properties named, in report order")
  func propertySelection() {
    let run = Self.prove([Self.broken, "--property", "isolation", "--property", "accessed-dirty"])
    #expect(run.exit == .success, "the broken property was not asked for: \(run.text)")
    let named = run.text.split(separator: "\n").compactMap { line in
      Self.everyProperty.first { line.hasPrefix($0 + " ") }
    }
    #expect(named == ["accessed-dirty", "isolation"])
  }

  @Test("An unknown property is bad input")
  func unknownProperty() {
    let run = Self.prove([Self.correct, "--property", "liveness"])
    #expect(run.exit == .badInput)
    #expect(run.text.contains("unknown property 'liveness'"))
  }

  // MARK: SMT-LIB2

  /// Re-checks every query file in `directory` with a fresh Z3 context: file name → answer.
  static func recheck(_ directory: String) throws -> [String: CheckResult] {
    var answers: [String: CheckResult] = [:]
    for name in try FileManager.default.contentsOfDirectory(atPath: directory) {
      let text = try String(contentsOfFile: directory + "/" + name, encoding: .utf8)
      let context = Context()
      let solver = try Solver(context: context)
      solver.assert(try context.parse(smtlib2: text))
      answers[name] = try solver.check()
    }
    return answers
  }

  @Test("--emit-smt2 writes queries that Z3 re-parses and re-decides: all unsat when proved")
  func emittedQueriesOfAProof() throws {
    let directory = try TemporaryDirectory()
    let run = Self.prove([Self.correct, "--emit-smt2", directory.path("queries")])
    #expect(run.exit == .success)
    let answers = try Self.recheck(directory.path("queries"))
    #expect(!answers.isEmpty)
    #expect(answers.keys.contains { $0.hasPrefix("entry-lemmas-") })
    for (name, answer) in answers {
      #expect(answer == .unsatisfiable, "\(name): \(answer)")
    }
  }

  @Test("--emit-smt2 on a violation: the violated property's last query is sat, the rest unsat")
  func emittedQueriesOfAViolation() throws {
    let directory = try TemporaryDirectory()
    let run = Self.prove([
      Self.broken, "--emit-smt2", directory.path("queries"), "--jobs", "1",
    ])
    #expect(run.exit == .failed)
    let answers = try Self.recheck(directory.path("queries"))
    let satisfiable = answers.filter { $0.value == .satisfiable }.map(\.key)
    #expect(satisfiable.count == 1, "\(satisfiable)")
    #expect(satisfiable.allSatisfy { $0.hasPrefix("soundness-") })
    #expect(answers.values.allSatisfy { $0 == .satisfiable || $0 == .unsatisfiable })
  }

  // MARK: Undecided

  @Test("--rlimit 1 leaves what Z3 must decide unknown: exit 3 with the budget named, never proved")
  func exhaustedBudgetIsUndecided() throws {
    let run = Self.prove([Self.correct, "--rlimit", "1", "--json"])
    #expect(run.exit == .undecided, "\(run.text)")
    let verdicts = Self.verdicts(try JSON.parse(run.text))
    // The entry lemmas always go to Z3; the other properties fold where they can.
    #expect(verdicts["entry-lemmas"] == "unknown")
    #expect(!verdicts.values.contains("violated"))
    #expect(verdicts.values.contains("unknown"))
    let text = Self.prove([Self.correct, "--rlimit", "1", "--property", "entry-lemmas"]).text
    #expect(text.contains("unknown: "))
    #expect(text.contains("(under --timeout 60000 ms, --rlimit 1)"), "\(text)")
  }

  // MARK: States without a shadow

  @Test("Without a shadow, a shadow property is one clear error, exit 2")
  func shadowPropertyWithoutShadow() {
    let run = Self.prove([ExampleStates.path("ept-4level.json"), "--property", "soundness"])
    #expect(run.exit == .badInput)
    #expect(run.text.contains("soundness is a property of shadow tables and the state has none"))
    #expect(!run.text.contains("\n"))
  }

  @Test("Without a shadow, isolation and the entry lemmas are proved")
  func noShadowIsolationAndLemmas() throws {
    var state = ShadowMachine(seed: 5, geometry: .npt4).state
    state.shadow = nil
    let directory = try TemporaryDirectory()
    let path = try directory.file("no-shadow.json", state.json.text(pretty: true))
    let run = Self.prove([path])
    #expect(run.exit == .success, "\(run.text)")
    #expect(Self.verdict("isolation", in: run.text) == "proved")
    #expect(Self.verdict("entry-lemmas", in: run.text) == "proved")
    #expect(Self.verdict("soundness", in: run.text) == nil)
  }

  // MARK: Hostile states

  /// A correct ShadowMachine state with `edit` applied to its memory, written to a file;
  /// `edit` says whether it found room for its change.
  static func edited(
    _ directory: TemporaryDirectory, _ name: String, _ edit: (inout MachineState) -> Bool
  ) throws -> String {
    var state = ShadowMachine(seed: 2).state
    try #require(edit(&state), "no room for the edit")
    return try directory.file(name, state.json.text(pretty: true))
  }

  @Test("Guest tables that reference themselves and each other are proved, not looped over")
  func guestCycles() throws {
    let directory = try TemporaryDirectory()
    let path = try Self.edited(directory, "guest-cycles.json") { state in
      let offset = ShadowMachine.hostOffset
      let frame: UInt64 = 0x000F_FFFF_FFFF_F000
      let root = state.guest.cr3
      let memory = state.memory
      func free(_ table: UInt64, _ indices: Range<UInt64>) -> UInt64? {
        indices.last { memory[offset + table + $0 * 8] == 0 }
      }
      guard let recursive = free(root, 0..<256),
        let used = (0..<UInt64(256)).first(where: { memory[offset + root + $0 * 8] != 0 })
      else { return false }
      // A free PML4 slot → the PML4 itself (the classic recursive slot) ...
      state.memory[offset + root + recursive * 8] = root | 0x27
      // ... and a free slot of the first PDPT back to the PML4: a cycle of two tables.
      let pdpt = memory[offset + root + used * 8] & frame
      guard let back = free(pdpt, 0..<512) else { return false }
      state.memory[offset + pdpt + back * 8] = root | 0x27
      return true
    }
    let run = Self.prove([path, "--json"])
    // The shadow maps none of the recursive views, so it still permits nothing more.
    #expect(run.exit == .success, "\(run.text)")
    #expect(Set(Self.verdicts(try JSON.parse(run.text)).values) == ["proved"])
  }

  @Test("Shadow and EPT tables in cycles are decided: the cycles' views are violations")
  func shadowAndHostCycles() throws {
    let directory = try TemporaryDirectory()
    let path = try Self.edited(directory, "shadow-cycles.json") { state in
      guard let shadow = state.shadow, case .ept(let ept) = state.nested,
        state.memory[shadow.cr3 + 200 * 8] == 0
      else { return false }
      // Shadow PML4[200] → itself: the shadow then maps its own tables, which lie outside
      // the guest's host ranges and which guest-plus-host does not map there.
      state.memory[shadow.cr3 + 200 * 8] = shadow.cr3 | 0x27
      // EPT PML4[511] → itself: guest-physical addresses there reach the EPT tables.
      let eptRoot = ept.eptp & 0x000F_FFFF_FFFF_F000
      state.memory[eptRoot + 511 * 8] = eptRoot | 0x7
      return true
    }
    let run = Self.prove([path, "--json"])
    #expect(run.exit == .failed, "\(run.text)")
    let verdicts = Self.verdicts(try JSON.parse(run.text))
    #expect(verdicts["soundness"] == "violated")
    #expect(verdicts["isolation"] == "violated")
    #expect(!verdicts.values.contains("unknown"))
  }

  @Test("A state estimated too large for memory is refused with one line, exit 2")
  func tooLarge() {
    let run = Self.prove([Self.correct, "--memory-limit", "1"])
    #expect(run.exit == .badInput)
    #expect(run.text.contains("too large to prove"))
    #expect(!run.text.contains("\n"))
  }
}
