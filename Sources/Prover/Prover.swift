import Foundation
import Machine
import ReferenceModel
import Z3

/// The verdict on one property.
public enum PropertyVerdict: Hashable, Sendable {
  /// Holds for every address and access.
  case proved
  /// Fails; the counterexample was replayed through the concrete model.
  case violated(Counterexample)
  /// Not decided: a query hit the timeout or resource limit (never reported as proved).
  case unknown(reason: String)
  /// Not checked, and why (no host ranges in the state for isolation).
  case skipped(reason: String)
}

/// The outcome of proving one property.
public struct PropertyResult: Hashable, Sendable {
  /// The property.
  public var property: PropertyName
  /// Its verdict.
  public var verdict: PropertyVerdict
}

/// What `prove` found.
public struct ProofReport: Hashable, Sendable {
  /// One result per property asked for, in ``PropertyName`` order.
  public var results: [PropertyResult]
  /// How the obligations were discharged.
  public var statistics: ProofStatistics
}

/// How to prove.
public struct ProverOptions: Sendable {
  /// The properties to check; `nil` (the default) for every property that applies to the
  /// state: all of them with shadow tables, isolation and the entry lemmas without. Naming a
  /// property that needs a shadow (``PropertyName/needsShadow``) for a state without one is
  /// bad input.
  public var properties: [PropertyName]?
  /// Wall-clock limit per Z3 query, milliseconds.
  public var timeoutMilliseconds: UInt32? = 60_000
  /// Z3 resource limit per query (deterministic).
  public var resourceLimit: UInt32?
  /// Worker tasks, each with its own Z3 context.
  public var jobs: Int = 2
  /// Where to write each Z3 query as an SMT-LIB2 file.
  public var emitDirectory: String?
  /// The most memory the proof may be estimated to need, in bytes (``ProofEstimate``); `nil`
  /// for three quarters of the machine's physical memory. A state estimated above it is
  /// refused before any work (``ProverError/tooLarge(_:)``).
  public var memoryLimit: UInt64?

  /// The defaults: every applicable property, 60 s per query, no resource limit, two jobs.
  public init() {}
}

/// What a proof of a state is estimated to cost before it starts, from the populated words of
/// its memory: every lane and cell the decomposition can make comes from a nonzero table
/// entry, and the prover holds a bounded amount per lane (measured on benchmark B5; see
/// docs/prover.md, "Limits").
public struct ProofEstimate: Hashable, Sendable {
  /// Populated (nonzero) memory words.
  public var populatedWords: Int
  /// The estimated peak memory, in bytes.
  public var bytes: UInt64

  /// Bytes held per populated word, with room to spare (B5 at 2^18 pages: about 0.2 KiB).
  public static let bytesPerWord: UInt64 = 4096
  /// Bytes the prover needs whatever the state (Z3 contexts, the model).
  public static let baseBytes: UInt64 = 256 << 20

  /// The estimate for `machine`.
  public init(_ machine: MachineState) {
    populatedWords = machine.memory.words.values.count { $0 != 0 }
    bytes = Self.baseBytes + UInt64(populatedWords) * Self.bytesPerWord
  }

  /// The limit used when ``ProverOptions/memoryLimit`` is `nil`: three quarters of physical
  /// memory.
  public static var defaultLimit: UInt64 { ProcessInfo.processInfo.physicalMemory / 4 * 3 }
}

/// Proves the properties of SEMANTICS §5.5 of a state against its guest tables and host
/// mapping, and the entry lemmas of §5.2 for its formats (docs/prover.md).
///
/// Throws ``ProverError/badInput(_:)`` for states it cannot judge (including a property that
/// needs shadow tables the state lacks), ``ProverError/tooLarge(_:)`` for a state estimated
/// not to fit in memory, ``ProverError/internalError(_:)`` when a counterexample does not
/// replay.
public func prove(
  _ machine: MachineState, options: ProverOptions = ProverOptions(), file: String? = nil
)
  throws(ProverError) -> ProofReport
{
  let problem: ProofProblem
  do {
    problem = try ProofProblem(machine, file: file)
  } catch {
    throw .badInput(error)
  }
  let wanted: Set<PropertyName>
  if let asked = options.properties {
    if machine.shadow == nil, let needing = asked.first(where: \.needsShadow) {
      throw .badInput(
        FormatError(
          file: file, field: "shadow",
          message: "\(needing.rawValue) is a property of shadow tables and the state has none; "
            + "without a shadow only "
            + PropertyName.allCases.filter { !$0.needsShadow }.map(\.rawValue).joined(
              separator: " and ") + " apply"))
    }
    wanted = Set(asked)
  } else {
    wanted = Set(PropertyName.allCases.filter { machine.shadow != nil || !$0.needsShadow })
  }
  let estimate = ProofEstimate(machine)
  let limit = options.memoryLimit ?? ProofEstimate.defaultLimit
  if estimate.bytes > limit {
    throw .tooLarge(
      "the state is too large to prove: \(estimate.populatedWords) populated memory words "
        + "need about \(gibibytes(estimate.bytes)) of memory, more than the "
        + "\(gibibytes(limit)) allowed (--memory-limit)")
  }
  let settings = QuerySettings(
    timeoutMilliseconds: options.timeoutMilliseconds, resourceLimit: options.resourceLimit,
    emitDirectory: options.emitDirectory)
  var statistics = ProofStatistics()
  // Isolation without host ranges is skipped below: no cell needs deciding for it.
  let cellProperties = PropertyName.allCases.filter {
    wanted.contains($0) && $0 != .entryLemmas && !($0 == .isolation && machine.hostRanges.isEmpty)
  }
  let first = try proveCells(
    problem, properties: cellProperties, settings: settings, jobs: options.jobs,
    statistics: &statistics)

  var results: [PropertyResult] = []
  for property in PropertyName.allCases where wanted.contains(property) {
    let verdict: PropertyVerdict
    if property == .entryLemmas {
      verdict = try EntryLemmas.prove(
        problem.configuration, hostAddressBits: machine.hostAddressBits, settings: settings,
        jobs: options.jobs, derivation: ReferenceShadowLeafDerivation(),
        statistics: &statistics)
    } else if property == .isolation && machine.hostRanges.isEmpty {
      verdict = .skipped(reason: "the state names no host ranges")
    } else if property == .isolation && machine.shadow == nil && problem.nestedModel == nil {
      verdict = .skipped(reason: "nothing translates: no shadow tables and no nested paging")
    } else {
      switch first[property]?.verdict {
      case nil, .holds: verdict = .proved
      case .fails(let counterexample): verdict = .violated(counterexample)
      case .unknown(let reason): verdict = .unknown(reason: reason)
      }
    }
    results.append(PropertyResult(property: property, verdict: verdict))
  }
  return ProofReport(results: results, statistics: statistics)
}

/// Proves the entry lemma (SEMANTICS §5.2) of `derivation` for the formats of
/// `configuration`: every shape of guest, host and shadow leaf the formats allow, every value
/// of every entry on both paths, every access. With ``ReferenceShadowLeafDerivation`` this is
/// the `entry-lemmas` property; with another derivation, a check of that rule.
public func proveEntryLemmas(
  _ configuration: Configuration, hostAddressBits: Int,
  derivation: some ShadowLeafDerivation = ReferenceShadowLeafDerivation(),
  options: ProverOptions = ProverOptions()
) throws(ProverError) -> ProofReport {
  var statistics = ProofStatistics()
  let settings = QuerySettings(
    timeoutMilliseconds: options.timeoutMilliseconds, resourceLimit: options.resourceLimit,
    emitDirectory: options.emitDirectory)
  let verdict = try EntryLemmas.prove(
    configuration, hostAddressBits: hostAddressBits, settings: settings, jobs: options.jobs,
    derivation: derivation, statistics: &statistics)
  return ProofReport(
    results: [PropertyResult(property: .entryLemmas, verdict: verdict)], statistics: statistics)
}

/// Decides the linear-address and guest-physical properties cell by cell: job `j` of `n` takes
/// cells `j`, `j + n`, `j + 2n`, … (cells of one kind and cost lie together in the
/// decomposition, so interleaving balances the jobs where contiguous chunks would not); each
/// job keeps the first verdict per property, and the first in decomposition order wins —
/// every earlier cell was decided for that property by the job that holds it.
func proveCells(
  _ problem: ProofProblem, properties: [PropertyName], settings: QuerySettings, jobs: Int,
  statistics: inout ProofStatistics
) throws(ProverError) -> [PropertyName: (cell: Int, verdict: CellVerdict)] {
  guard !properties.isEmpty else { return [:] }
  let decomposition = Decomposition(problem)
  let unsync = problem.unsyncHostFrames
  let protectedFrames = Set(
    decomposition.guestTables.compactMap { frame, levels in
      levels == [1] && unsync.contains(frame) ? nil : frame
    })
  let cells = decomposition.cells
  guard !cells.isEmpty else { return [:] }
  let jobs = max(1, min(jobs, cells.count))
  let outcomes = WorkerOutcomes(count: jobs)
  DispatchQueue.concurrentPerform(iterations: jobs) { job in
    outcomes.set(
      job,
      runWorker(
        problem, protectedFrames: protectedFrames, settings: settings, worker: job,
        cells: cells, indices: Array(stride(from: job, to: cells.count, by: jobs)),
        properties: properties))
  }
  var first: [PropertyName: (cell: Int, verdict: CellVerdict)] = [:]
  for job in 0..<jobs {
    switch outcomes.get(job) {
    case .failure(let error): throw error
    case .success(let worker):
      statistics.add(worker.statistics)
      for (property, found) in worker.found {
        let earlier = first[property]
        if earlier == nil || found.cell < earlier?.cell ?? 0 { first[property] = found }
      }
    }
  }
  return first
}

/// `1.5 GiB`, `300 MiB`.
func gibibytes(_ bytes: UInt64) -> String {
  if bytes >= 1 << 30 {
    let tenths = bytes * 10 / (1 << 30)
    return "\(tenths / 10).\(tenths % 10) GiB"
  }
  return "\(bytes >> 20) MiB"
}

/// One worker's findings: per property, the first cell (in decomposition order) that did not
/// hold, and how.
struct WorkerResult: Sendable {
  var found: [PropertyName: (cell: Int, verdict: CellVerdict)] = [:]
  var statistics = ProofStatistics()
}

extension CellVerdict: @unchecked Sendable {}

func runWorker(
  _ problem: ProofProblem, protectedFrames: Set<UInt64>, settings: QuerySettings, worker: Int,
  cells: [Cell], indices: [Int], properties: [PropertyName]
) -> Result<WorkerResult, ProverError> {
  var result = WorkerResult()
  do {
    let prover = try CellProver(
      problem: problem, protectedFrames: protectedFrames, settings: settings, worker: worker)
    for index in indices {
      // A violated property needs no more cells; an unknown one keeps looking for a violation.
      let open = properties.filter {
        if case .fails = result.found[$0]?.verdict { return false }
        return true
      }
      if open.isEmpty { break }
      for (property, verdict) in try prover.decide(cells[index], open) {
        if case .unknown = verdict, result.found[property] != nil { continue }
        result.found[property] = (index, verdict)
      }
    }
    result.statistics = prover.statistics
    return .success(result)
  } catch let error as ProverError {
    return .failure(error)
  } catch let error as FormatError {
    return .failure(.badInput(error))
  } catch {
    return .failure(.internalError("\(error)"))
  }
}

/// Results of concurrent workers, each written once by its own job.
final class WorkerOutcomes: @unchecked Sendable {
  private var values: [Result<WorkerResult, ProverError>?]
  private let lock = NSLock()

  init(count: Int) { values = Array(repeating: nil, count: count) }

  func set(_ index: Int, _ value: Result<WorkerResult, ProverError>) {
    lock.lock()
    values[index] = value
    lock.unlock()
  }

  func get(_ index: Int) -> Result<WorkerResult, ProverError> {
    lock.lock()
    defer { lock.unlock() }
    return values[index] ?? .failure(.internalError("worker \(index) produced nothing"))
  }
}

/// Writes one query's SMT-LIB2 text into `directory`.
func writeQuery(_ text: String, to directory: String, name: String) throws {
  let url = URL(fileURLWithPath: directory).appendingPathComponent(name)
  try FileManager.default.createDirectory(
    atPath: directory, withIntermediateDirectories: true)
  try text.write(to: url, atomically: true, encoding: .utf8)
}
