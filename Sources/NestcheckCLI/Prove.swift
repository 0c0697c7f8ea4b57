import ArgumentParser
import Foundation
import Machine
import Prover
import ReferenceModel

/// `nestcheck prove`: proves a shadow consistent with guest-plus-host for every address.
struct Prove: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Prove a state's shadow tables consistent with its guest tables and EPT/NPT.",
    discussion: """
      For every canonical guest virtual address, each access kind (read, write, fetch) and \
      privilege (user, supervisor, implicit supervisor), the reference model walks the shadow \
      tables as the hardware would (shadow.cr3 with the shadow's control registers) and the \
      guest's tables followed by EPT/NPT (guest-plus-host), and Z3 decides the properties \
      (SEMANTICS §5.5; docs/prover.md):

      \(PropertyName.allCases.map { "  \($0.rawValue)\n      \($0.summary)" }.joined(separator: "\n"))

      Out-of-sync level-1 guest tables (shadow.unsyncTables) may be stale (§5.5 I8): \
      addresses whose guest walk reads one are exempt from soundness, accessed-dirty and \
      fault-classification. Isolation needs hostRanges in the state (else it is skipped). \
      A state without shadow tables can still be proved isolated (its EPT/NPT mapping) and \
      its formats' entry lemmas; those are then the default, and naming a shadow property \
      is bad input.

      Before starting, the proof's memory is estimated from the state's populated words; a \
      state estimated above --memory-limit (default: three quarters of physical memory) is \
      refused as bad input.

      Verdicts: proved; VIOLATED with a counterexample (a concrete address and access, \
      replayed through the concrete model and shown as both walks side by side, the first \
      difference marked); unknown (a query hit --timeout or --rlimit; never a pass).

      Exit codes: 0 every property proved (or skipped); 1 a property violated; 2 bad input; \
      3 undecided (some unknown, none violated); 4 internal error (docs/exit-codes.md).

      Examples:
        nestcheck prove examples/states/shadow-correct.json
        nestcheck prove examples/states/shadow-broken.json --property soundness --json
        nestcheck prove STATE --emit-smt2 queries/ --rlimit 5000000
      """
  )

  @Argument(
    help: ArgumentHelp(
      "The state snapshot (JSON), with shadow tables for the shadow properties.",
      valueName: "state"))
  var state: String

  @Option(
    name: .customLong("property"),
    help: ArgumentHelp(
      "A property to prove (repeatable; default: all that apply): "
        + PropertyName.allCases.map(\.rawValue).joined(separator: ", ") + ".",
      valueName: "name"))
  var properties: [String] = []

  @Flag(help: "Print the report as JSON.")
  var json = false

  @Option(help: ArgumentHelp("Wall-clock limit per Z3 query, in milliseconds.", valueName: "ms"))
  var timeout: UInt32 = 60_000

  @Option(help: ArgumentHelp("Z3 resource limit per query (deterministic).", valueName: "n"))
  var rlimit: UInt32?

  @Option(help: "Worker tasks, each with its own Z3 context.")
  var jobs: Int = 2

  @Option(
    name: .customLong("emit-smt2"),
    help: ArgumentHelp(
      "Write every query sent to Z3 as a standalone SMT-LIB2 file into this directory.",
      valueName: "dir"))
  var emitDirectory: String?

  @Option(
    name: .customLong("memory-limit"),
    help: ArgumentHelp(
      "Refuse states whose proof is estimated to need more memory than this, in MiB.",
      valueName: "MiB"))
  var memoryLimit: UInt64?

  func validate() throws {
    for name in properties where PropertyName(rawValue: name) == nil {
      throw ValidationError(
        "unknown property '\(name)' (known: "
          + PropertyName.allCases.map(\.rawValue).joined(separator: ", ") + ")")
    }
    guard jobs >= 1 else { throw ValidationError("--jobs must be at least 1") }
  }

  func run() throws {
    let (text, exit) = try report()
    print(text)
    if exit != .success { throw ExitCode(exit.rawValue) }
  }

  /// The report's text and the exit code it calls for: 1 when a property is violated, 3 when
  /// one is unknown and none violated, else 0. Bad input and internal errors are thrown.
  func report() throws -> (text: String, exit: NestcheckExit) {
    let machine = try MachineState.load(file: state)
    var options = ProverOptions()
    options.memoryLimit = memoryLimit.map { $0 << 20 }
    if !properties.isEmpty { options.properties = properties.compactMap(PropertyName.init) }
    options.timeoutMilliseconds = timeout
    options.resourceLimit = rlimit
    options.jobs = jobs
    options.emitDirectory = emitDirectory
    let report: ProofReport
    do {
      report = try prove(machine, options: options, file: state)
    } catch {
      switch error {
      case .badInput(let e): throw e
      case .internalError(let m): throw CommandFailure("internal error: " + m, exit: .internalError)
      case .tooLarge(let m): throw CommandFailure(m, exit: .badInput)
      }
    }
    let text =
      json
      ? ProofText.json(report, state: state).text(pretty: true)
      : ProofText.lines(report, machine: machine).joined(separator: "\n")
    if report.results.contains(where: { if case .violated = $0.verdict { true } else { false } }) {
      return (text, .failed)
    }
    if report.results.contains(where: { if case .unknown = $0.verdict { true } else { false } }) {
      return (text, .undecided)
    }
    return (text, .success)
  }
}

/// How `prove` prints a report.
enum ProofText {
  static func lines(_ report: ProofReport, machine: MachineState) -> [String] {
    var lines: [String] = []
    for result in report.results {
      let name = pad(result.property.rawValue, 22)
      switch result.verdict {
      case .proved: lines.append("\(name)proved")
      case .skipped(let reason): lines.append("\(name)skipped: \(reason)")
      case .unknown(let reason): lines.append("\(name)unknown: \(reason)")
      case .violated(let c):
        lines.append("\(name)VIOLATED")
        lines += counterexample(c, machine: machine).map { "  " + $0 }
      }
    }
    let s = report.statistics
    lines.append(
      "\(s.cells) cells, \(s.lanes) lanes; \(s.folded) obligations decided by evaluation, "
        + "\(s.queries) by Z3")
    return lines
  }

  static func counterexample(_ c: Counterexample, machine: MachineState) -> [String] {
    let space = c.guestPhysical ? "guest physical" : "guest virtual"
    var lines = ["counterexample: \(c.access) at \(space) \(hex(c.address))", c.summary]
    if c.property == .entryLemmas { return lines }
    guard let walks = try? c.walks(in: machine) else { return lines }
    var rows: [[String]] = [["", "level", "shadow (hardware walk)", "guest-plus-host"]]
    for (i, row) in walks.rows.enumerated() {
      let mark = walks.firstDifference == i ? ">>" : ""
      rows.append([
        mark, pagingLevelName(row.level),
        row.shadow.map { entry($0, walks.shadowModel) } ?? "(not read)",
        row.guest.map { entry($0, walks.compositionModel) } ?? "(not read)",
      ])
    }
    rows.append([
      walks.firstDifference == walks.rows.count ? ">>" : "", "outcome",
      OutcomeText.line(walks.shadow.outcome), OutcomeText.line(walks.composition.outcome),
    ])
    lines += table(rows)
    lines.append(">> marks the first point where the walks differ")
    return lines
  }

  static func entry(_ r: MemoryReference<Concrete>, _ model: ConcreteModel) -> String {
    "\(hex(r.value)) " + EntryText.decoded(model.describe(r))
  }

  static func json(_ report: ProofReport, state: String) -> JSON {
    .object([
      ("format", .string("nestcheck-prove")), ("version", .integer(1)), ("state", .string(state)),
      ("results", .array(report.results.map(result))),
      (
        "statistics",
        .object([
          "cells": .integer(report.statistics.cells), "lanes": .integer(report.statistics.lanes),
          "folded": .integer(report.statistics.folded),
          "queries": .integer(report.statistics.queries),
        ])
      ),
    ])
  }

  static func result(_ r: PropertyResult) -> JSON {
    var members: [(key: String, value: JSON)] = [("property", .string(r.property.rawValue))]
    switch r.verdict {
    case .proved: members.append(("verdict", .string("proved")))
    case .skipped(let reason):
      members += [("verdict", .string("skipped")), ("reason", .string(reason))]
    case .unknown(let reason):
      members += [("verdict", .string("unknown")), ("reason", .string(reason))]
    case .violated(let c):
      members += [
        ("verdict", .string("violated")),
        (
          "counterexample",
          .object([
            (c.guestPhysical ? "gpa" : "gva", .hex(c.address)),
            ("access", OutcomeText.json(c.access)), ("summary", .string(c.summary)),
          ])
        ),
      ]
    }
    return .object(members)
  }
}
