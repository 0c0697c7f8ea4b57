/// The kind of an outcome, as a small number that travels through a domain.
public enum OutcomeKind: UInt64, CaseIterable, Sendable {
  /// Translated to a host physical address.
  case translated = 0
  /// `#GP(0)`.
  case generalProtection = 1
  /// Guest `#PF`.
  case pageFault = 2
  /// EPT violation.
  case eptViolation = 3
  /// EPT misconfiguration.
  case eptMisconfiguration = 4
  /// `#VMEXIT(NPF)`.
  case nestedPageFault = 5
}

/// Where in the two-dimensional walk a decision was taken, as a small number.
public enum Stage: UInt64, CaseIterable, Sendable {
  /// Before any walk (the canonical check), or after the whole walk succeeded.
  case none = 0
  /// In the guest's own tables.
  case guest = 1
  /// In the nested walk of a guest paging entry's address (read, or A/D write).
  case nestedTable = 2
  /// In the nested walk of the final guest physical address.
  case nestedFinal = 3
}

/// A fault as one check would report it, before the walk decides whether it is the first.
struct Fault<D: BitVectorDomain> {
  /// An ``OutcomeKind`` raw value.
  var kind: D.Word
  /// Error code, exit qualification or EXITINFO1.
  var code: D.Word
  /// CR2, the faulting guest-physical address, or EXITINFO2.
  var address: D.Word
  /// The guest-linear address of an EPT violation (with qualification bit 7).
  var linear: D.Word
  /// Which rule decided (a ``Rule`` raw value).
  var rule: D.Word
  var stage: Stage
  /// The paging level at which it was found (0 where none applies).
  var level: D.Word

  init(
    kind: D.Word, code: D.Word, address: D.Word, linear: D.Word, rule: D.Word, stage: Stage,
    level: D.Word
  ) {
    self.kind = kind
    self.code = code
    self.address = address
    self.linear = linear
    self.rule = rule
    self.stage = stage
    self.level = level
  }

  init(
    _ d: D, _ kind: OutcomeKind, code: D.Word, address: D.Word, linear: D.Word? = nil,
    rule: D.Word, stage: Stage, level: D.Word
  ) {
    self.init(
      kind: d.word(kind.rawValue), code: code, address: address, linear: linear ?? d.word(0),
      rule: rule, stage: stage, level: level)
  }
}

extension Fault {
  /// A placeholder for a check that cannot fail; ``Verdict`` never records it.
  init(_ d: D, nothing address: D.Word) {
    self.init(
      d, .translated, code: d.word(0), address: address,
      rule: d.word(Rule.translated.rawValue), stage: .none, level: d.word(0))
  }
}

/// The outcome of a walk as it is being decided: the first fault recorded wins, exactly as the
/// architecture raises the first fault it meets in walk order (SEMANTICS §4.1).
///
/// Writing a walk as a sequence of `record(_:when:)` calls keeps it one straight-line
/// definition that both interpretations run: concretely the first true condition wins,
/// symbolically the conditions nest into one formula.
struct Verdict<D: BitVectorDomain> {
  /// Whether some fault has been recorded.
  var decided: D.Flag
  var kind: D.Word
  var code: D.Word
  var address: D.Word
  var linear: D.Word
  var rule: D.Word
  var stage: D.Word
  var level: D.Word

  init(_ d: D) {
    decided = d.no
    kind = d.word(OutcomeKind.translated.rawValue)
    code = d.word(0)
    address = d.word(0)
    linear = d.word(0)
    rule = d.word(Rule.translated.rawValue)
    stage = d.word(Stage.none.rawValue)
    level = d.word(0)
  }

  /// Records `fault` if `condition` holds and nothing was recorded before.
  mutating func record(_ d: D, _ fault: Fault<D>, when condition: D.Flag) {
    if d.isCertainlyFalse(condition) || d.isCertainlyTrue(decided) { return }
    let take = d.and(d.not(decided), condition)
    kind = d.select(take, fault.kind, kind)
    code = d.select(take, fault.code, code)
    address = d.select(take, fault.address, address)
    linear = d.select(take, fault.linear, linear)
    rule = d.select(take, fault.rule, rule)
    stage = d.select(take, d.word(fault.stage.rawValue), stage)
    level = d.select(take, fault.level, level)
    decided = d.or(decided, condition)
  }
}
