import Foundation
import Machine
import ReferenceModel
import Z3

/// The entry lemmas of SEMANTICS §5.2 (docs/prover.md): for every shape of leaf the formats
/// allow (``ShadowLeafShape/all(_:hostAddressBits:)``), the model's statement
/// ``shadowEntryLemma(_:_:_:derivation:)`` evaluated over fresh Z3 variables — every entry on
/// the guest and host paths (all 2^64 values each), the address, the faulting access and the
/// later access, the guest's registers, the host's flags — must be valid: `premise ∧
/// ¬conclusion` is unsatisfiable. A model is replayed through the concrete interpretation of
/// the same statement before it is reported.
enum EntryLemmas {
  /// The verdict for `configuration`'s formats, each shape one query, shapes split over
  /// `jobs` tasks with a Z3 context each.
  static func prove(
    _ configuration: Configuration, hostAddressBits: Int, settings: QuerySettings, jobs: Int,
    derivation: some ShadowLeafDerivation, statistics: inout ProofStatistics
  ) throws(ProverError) -> PropertyVerdict {
    guard configuration.guestLevels > 0 else {
      return .skipped(reason: "guest paging is off: there are no guest entries to derive from")
    }
    let shapes = ShadowLeafShape.all(configuration, hostAddressBits: hostAddressBits)
    let jobs = max(1, min(jobs, shapes.count))
    let outcomes = LemmaOutcomes(count: shapes.count)
    DispatchQueue.concurrentPerform(iterations: jobs) { job in
      let context = Context()
      for index in stride(from: job, to: shapes.count, by: jobs) {
        outcomes.set(
          index,
          decide(
            shapes[index], context: context, settings: settings, derivation: derivation,
            number: index))
        if case .success(.violated) = outcomes.get(index) { break }
      }
    }
    statistics.queries += shapes.count
    var unknown: String?
    for index in shapes.indices {
      switch outcomes.get(index) {
      case nil: continue  // after a violation in the same job
      case .failure(let error): throw error
      case .success(.violated(let c)): return .violated(c)
      case .success(.unknown(let reason)):
        if unknown == nil { unknown = "\(shapes[index]): \(reason)" }
      case .success: continue
      }
    }
    if let unknown { return .unknown(reason: unknown) }
    return .proved
  }

  /// One shape: build the statement over fresh variables, ask Z3 for a model of its negation.
  static func decide(
    _ shape: ShadowLeafShape, context: Context, settings: QuerySettings,
    derivation: some ShadowLeafDerivation, number: Int
  ) -> Result<PropertyVerdict, ProverError> {
    do {
      let d = Symbolic(context: context)
      let variables = LemmaVariables(shape, context: context)
      let lemma = shadowEntryLemma(d, shape, variables.inputs(d), derivation: derivation)
      let solver = try Solver(context: context)
      solver.timeoutMilliseconds = settings.timeoutMilliseconds
      solver.resourceLimit = settings.resourceLimit
      solver.assert([d.term(lemma.premise), d.term(lemma.conclusion).not()])
      if let directory = settings.emitDirectory {
        try writeQuery(
          try solver.smtlib2(), to: directory, name: "entry-lemmas-\(number)-\(shape.fileName).smt2"
        )
      }
      switch try solver.check() {
      case .unsatisfiable: return .success(.proved)
      case .unknown(let reason):
        return .success(.unknown(reason: settings.explain(unknown: reason)))
      case .satisfiable:
        let values = try variables.values(in: try solver.model())
        return .success(.violated(try replay(shape, values, derivation: derivation)))
      }
    } catch let error as ProverError {
      return .failure(error)
    } catch {
      return .failure(.internalError("entry lemma, \(shape): \(error)"))
    }
  }

  /// Evaluates the statement concretely at a model's values; a model the concrete
  /// interpretation does not refute becomes the counterexample, any other is an encoding bug.
  static func replay(
    _ shape: ShadowLeafShape, _ values: LemmaValues, derivation: some ShadowLeafDerivation
  ) throws(ProverError) -> Counterexample {
    let d = Concrete()
    let lemma = shadowEntryLemma(d, shape, values.inputs(d), derivation: derivation)
    guard lemma.premise, !lemma.conclusion else {
      throw .internalError(
        "encoding bug: Z3 claims the entry lemma fails for \(shape), but the concrete model "
          + "disagrees")
    }
    let entries = { (words: [UInt64]) in words.map(hex).joined(separator: " ") }
    let summary =
      "\(shape): guest path \(entries(values.guestPath)), host path "
      + "\(values.hostPath.isEmpty ? "(none)" : entries(values.hostPath)), fault \(values.fault)"
      + ", CR0 \(hex(values.cr0)) CR4 \(hex(values.cr4)) EFER \(hex(values.efer)); "
      + "host writable \(values.hostWritable), log-dirty \(values.logDirty), page table "
      + "\(values.pageTable): the derived shadow leaf \(hex(lemma.shadowLeaf)) lets "
      + "\(values.access) through where the composition does not (or elsewhere, or without "
      + "the guest's A/D)"
    return Counterexample(
      property: .entryLemmas, address: values.linear, access: values.access,
      guestPhysical: false, summary: summary)
  }
}

/// The lemma's free variables for one shape, in one context.
struct LemmaVariables {
  let shape: ShadowLeafShape
  let context: Context
  let guestPath: [Term]
  let hostPath: [Term]
  let words: [String: Term]
  let flags: [String: Term]

  static let wordNames = ["va", "cr0", "cr4", "efer", "rflags", "pkru", "pkrs", "hostEFER"]
  static let flagNames = [
    "faultWrite", "faultFetch", "faultUser", "faultImplicit", "write", "fetch", "user",
    "implicit", "mbec", "hostWritable", "logDirty", "pageTable",
  ]

  init(_ shape: ShadowLeafShape, context: Context) {
    self.shape = shape
    self.context = context
    let configuration = shape.configuration
    guestPath = stride(from: configuration.guestLevels, through: shape.guestLevel, by: -1).map {
      context.bitVectorVariable("guest\($0)", width: 64)
    }
    hostPath = stride(from: configuration.nestedLevels, through: shape.hostLevel, by: -1).map {
      context.bitVectorVariable("host\($0)", width: 64)
    }
    var words: [String: Term] = [:]
    for name in Self.wordNames { words[name] = context.bitVectorVariable(name, width: 64) }
    var flags: [String: Term] = [:]
    for name in Self.flagNames { flags[name] = context.boolVariable(name) }
    self.words = words
    self.flags = flags
  }

  func word(_ name: String) -> Symbolic.Word {
    .term(words[name] ?? context.bitVectorVariable(name, width: 64))
  }

  func flag(_ name: String) -> Symbolic.Flag { .term(flags[name] ?? context.boolVariable(name)) }

  func inputs(_ d: Symbolic) -> ShadowEntryLemmaInputs<Symbolic> {
    ShadowEntryLemmaInputs(
      guestPath: guestPath.map { .term($0) }, hostPath: hostPath.map { .term($0) },
      linear: word("va"),
      fault: AccessDescriptor(
        write: flag("faultWrite"), fetch: flag("faultFetch"), user: flag("faultUser"),
        implicit: flag("faultImplicit")),
      access: AccessDescriptor(
        write: flag("write"), fetch: flag("fetch"), user: flag("user"),
        implicit: flag("implicit")),
      cr0: word("cr0"), cr4: word("cr4"), efer: word("efer"), rflags: word("rflags"),
      pkru: word("pkru"), pkrs: word("pkrs"), hostEFER: word("hostEFER"),
      modeBasedExecute: flag("mbec"), hostWritable: flag("hostWritable"),
      logDirty: flag("logDirty"), pageTable: flag("pageTable"))
  }

  /// The values a model gives every variable (unconstrained ones as Z3 completes them).
  func values(in model: Model) throws -> LemmaValues {
    func word(_ t: Term) throws -> UInt64 { try model.uint64(of: t, completion: true) ?? 0 }
    func flag(_ name: String) throws -> Bool {
      try flags[name].flatMap { try model.bool(of: $0, completion: true) } ?? false
    }
    func named(_ name: String) throws -> UInt64 { try words[name].map(word) ?? 0 }
    func access(_ prefix: String) throws -> Access {
      let write = try flag(prefix.isEmpty ? "write" : prefix + "Write")
      let fetch = try flag(prefix.isEmpty ? "fetch" : prefix + "Fetch")
      let user = try flag(prefix.isEmpty ? "user" : prefix + "User")
      let implicit = try flag(prefix.isEmpty ? "implicit" : prefix + "Implicit")
      let kind: AccessKind = write ? .write : fetch ? .fetch : .read
      return implicit ? Access(kind, implicit: true) : Access(kind, user: user)
    }
    return LemmaValues(
      guestPath: try guestPath.map(word), hostPath: try hostPath.map(word),
      linear: try named("va"), fault: try access("fault"), access: try access(""),
      cr0: try named("cr0"), cr4: try named("cr4"), efer: try named("efer"),
      rflags: try named("rflags"), pkru: try named("pkru"), pkrs: try named("pkrs"),
      hostEFER: try named("hostEFER"), modeBasedExecute: try flag("mbec"),
      hostWritable: try flag("hostWritable"), logDirty: try flag("logDirty"),
      pageTable: try flag("pageTable"))
  }
}

/// Concrete values of the lemma's variables.
struct LemmaValues {
  var guestPath: [UInt64]
  var hostPath: [UInt64]
  var linear: UInt64
  var fault: Access
  var access: Access
  var cr0, cr4, efer, rflags, pkru, pkrs, hostEFER: UInt64
  var modeBasedExecute, hostWritable, logDirty, pageTable: Bool

  func inputs(_ d: Concrete) -> ShadowEntryLemmaInputs<Concrete> {
    ShadowEntryLemmaInputs(
      guestPath: guestPath, hostPath: hostPath, linear: linear,
      fault: AccessDescriptor(d, fault), access: AccessDescriptor(d, access), cr0: cr0,
      cr4: cr4, efer: efer, rflags: rflags, pkru: pkru, pkrs: pkrs, hostEFER: hostEFER,
      modeBasedExecute: modeBasedExecute, hostWritable: hostWritable, logDirty: logDirty,
      pageTable: pageTable)
  }
}

/// Results of concurrent lemma queries, each written once by its own job.
final class LemmaOutcomes: @unchecked Sendable {
  private var values: [Result<PropertyVerdict, ProverError>?]
  private let lock = NSLock()

  init(count: Int) { values = Array(repeating: nil, count: count) }

  func set(_ index: Int, _ value: Result<PropertyVerdict, ProverError>) {
    lock.withLock { values[index] = value }
  }

  func get(_ index: Int) -> Result<PropertyVerdict, ProverError>? {
    lock.withLock { values[index] }
  }
}

extension ShadowLeafShape {
  /// `g2m-h4k-s4k`, for query file names.
  var fileName: String {
    let names = [1: "4k", 2: "2m", 3: "1g"]
    return "g\(names[guestLevel] ?? "")-h\(names[hostLevel] ?? "")-s\(names[shadowLevel] ?? "")"
  }
}
