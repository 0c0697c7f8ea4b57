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
  /// The properties to check (default: all).
  public var properties: [PropertyName] = PropertyName.allCases
  /// Wall-clock limit per Z3 query, milliseconds.
  public var timeoutMilliseconds: UInt32? = 60_000
  /// Z3 resource limit per query (deterministic).
  public var resourceLimit: UInt32?
  /// Worker tasks, each with its own Z3 context.
  public var jobs: Int = 2
  /// Where to write each Z3 query as an SMT-LIB2 file.
  public var emitDirectory: String?

  /// The defaults: every property, 60 s per query, no resource limit, two jobs.
  public init() {}
}

/// Proves the properties of SEMANTICS §5.5 of a state with shadow tables against its guest
/// tables and host mapping (docs/prover.md).
///
/// Throws ``ProverError/badInput(_:)`` for states it cannot judge,
/// ``ProverError/internalError(_:)`` when a counterexample does not replay.
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
  let decomposition = Decomposition(problem)
  let unsync = problem.unsyncHostFrames
  let protectedFrames = Set(
    decomposition.guestTables.compactMap { frame, levels in
      levels == [1] && unsync.contains(frame) ? nil : frame
    })
  let wanted = Set(options.properties)
  let cellProperties = PropertyName.allCases.filter { wanted.contains($0) && $0 != .entryLemmas }
  let settings = QuerySettings(
    timeoutMilliseconds: options.timeoutMilliseconds, resourceLimit: options.resourceLimit,
    emitDirectory: options.emitDirectory)

  // Contiguous chunks of cells, one per job; each job keeps the first verdict per property.
  let cells = decomposition.cells
  let jobs = max(1, min(options.jobs, cells.count))
  let chunk = (cells.count + jobs - 1) / jobs
  let outcomes = WorkerOutcomes(count: jobs)
  DispatchQueue.concurrentPerform(iterations: jobs) { job in
    let range = (job * chunk)..<min(cells.count, (job + 1) * chunk)
    outcomes.set(
      job,
      runWorker(
        problem, protectedFrames: protectedFrames, settings: settings, worker: job,
        cells: cells, range: range, properties: cellProperties))
  }

  var statistics = ProofStatistics()
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

  var results: [PropertyResult] = []
  for property in PropertyName.allCases where wanted.contains(property) {
    let verdict: PropertyVerdict
    if property == .entryLemmas {
      verdict = EntryLemmas.prove(settings: settings)
    } else if property == .isolation && machine.hostRanges.isEmpty {
      verdict = .skipped(reason: "the state names no host ranges")
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

/// One worker's findings: per property, the first cell (in decomposition order) that did not
/// hold, and how.
struct WorkerResult: Sendable {
  var found: [PropertyName: (cell: Int, verdict: CellVerdict)] = [:]
  var statistics = ProofStatistics()
}

extension CellVerdict: @unchecked Sendable {}

func runWorker(
  _ problem: ProofProblem, protectedFrames: Set<UInt64>, settings: QuerySettings, worker: Int,
  cells: [Cell], range: Range<Int>, properties: [PropertyName]
) -> Result<WorkerResult, ProverError> {
  var result = WorkerResult()
  do {
    let prover = try CellProver(
      problem: problem, protectedFrames: protectedFrames, settings: settings, worker: worker)
    for index in range {
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
