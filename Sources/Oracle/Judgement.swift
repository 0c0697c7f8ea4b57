import Machine

/// The oracle's verdict on one observation.
public enum Judgement: Hashable, Sendable {
  /// The observation is one the architecture allows.
  case agrees
  /// The observation is outside the allowed set.
  case diverges(Divergence)
}

/// An observation outside the set the architecture allows, with that set.
public struct Divergence: Hashable, Sendable, CustomStringConvertible {
  /// The operation observed.
  public var operation: TraceOperation
  /// What the target reported.
  public var observed: TraceObservation
  /// The results the architecture allows (a summary when the set is large: the fresh walk's
  /// result first, then what the explanations tried gave).
  public var allowed: [TraceResult]
  /// Why the observation is outside the set, in a sentence.
  public var reason: String

  /// Makes a divergence.
  public init(
    operation: TraceOperation, observed: TraceObservation, allowed: [TraceResult], reason: String
  ) {
    self.operation = operation
    self.observed = observed
    self.allowed = allowed
    self.reason = reason
  }

  /// `observed …; allowed …: reason`.
  public var description: String {
    let expected = allowed.map { TraceObservation($0).json.text() }.joined(separator: " | ")
    return "observed \(observed.json.text()); allowed \(expected): \(reason)"
  }
}

/// Why the oracle cannot judge a trace from a state.
public struct OracleSetupError: Error, Hashable, Sendable, CustomStringConvertible {
  /// What is wrong, in a sentence.
  public var message: String

  /// Makes an error.
  public init(_ message: String) { self.message = message }

  /// The message.
  public var description: String { message }
}

/// What the oracle did, for progress lines and benchmarks.
public struct OracleStatistics: Hashable, Sendable {
  /// Operations judged.
  public var operations = 0
  /// Accesses judged.
  public var accesses = 0
  /// Accesses the fresh walk explained at once.
  public var freshAccesses = 0
  /// Accesses that needed the search through stale translations and IMPL choices.
  public var searchedAccesses = 0
  /// Accesses explained only by a stale translation.
  public var staleAccesses = 0
  /// Walks the reference model ran.
  public var walks = 0
  /// Searches that hit their limit: the observation was accepted (unjudged when no explanation
  /// had been found), and every A/D bit a walk of the address could write left uncertain.
  public var searchLimitReached = 0
  /// Searches of a fault the fresh walk gives that stopped at
  /// ``Oracle/explainedFaultSearchLimit`` walks: the fault was explained, and every A/D bit a
  /// walk of the address could write left uncertain.
  public var explainedFaultSearchesCut = 0

  /// Makes empty statistics.
  public init() {}
}

extension Oracle {
  /// Walks the explanation search of one access may run. A search that reaches the limit
  /// accepts the observation (unjudged if it has not explained it) and leaves every A/D bit a
  /// walk of the address could write uncertain; it is counted in
  /// ``OracleStatistics/searchLimitReached``: a campaign reports that count, never hides it.
  public static var searchLimit: Int { ExplanationSearch.runLimit }

  /// Walks the search of a fault the fresh walk already gives may run: that search decides
  /// only which A/D bits become uncertain, and one that stops here makes uncertain every bit a
  /// walk of the address could write; counted in
  /// ``OracleStatistics/explainedFaultSearchesCut``.
  public static var explainedFaultSearchLimit: Int { ExplanationSearch.explainedFaultRunLimit }
}
