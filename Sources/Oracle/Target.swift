import Machine

/// An implementation under test: anything that takes a machine state, applies trace
/// operations and reports what it observed (DESIGN.md, "what passes between the parts").
///
/// The fast MMU in each mode is one (in process); an external process speaking the trace
/// protocol over standard input and output is another; a shared library implementing the C
/// ABI is a third. The oracle drives every target the same way and judges each observation
/// against the set the architecture allows.
public protocol Target: AnyObject {
  /// A short name for reports: `fast-mmu:nested`, `process:./my-adapter`, …
  var name: String { get }

  /// Starts over from `state`, discarding everything the target holds (TLBs, shadow pages).
  func reset(to state: MachineState) throws(TargetError)

  /// Applies one operation and reports what was observed.
  func apply(_ operation: TraceOperation) throws(TargetError) -> TraceObservation
}

/// A target that could not be driven: it crashed, hung, or answered something that is not an
/// observation. Reported with the trace that provoked it; never taken as an observation.
public struct TargetError: Error, Hashable, Sendable, CustomStringConvertible {
  /// What went wrong.
  public enum Kind: String, Hashable, Sendable {
    /// The target refused the initial state (an unsupported configuration).
    case setupRefused = "setup-refused"
    /// The target's process died, or the library call trapped.
    case crashed
    /// The target did not answer within the per-operation timeout.
    case timedOut = "timed-out"
    /// The answer was not a well-formed observation of this protocol version.
    case garbage
  }

  /// What went wrong.
  public var kind: Kind
  /// Details: the exit status, the unparsable line, the refusal message.
  public var detail: String

  /// Makes an error.
  public init(_ kind: Kind, _ detail: String) {
    self.kind = kind
    self.detail = detail
  }

  /// `crashed: exit status 139` and so on.
  public var description: String { "\(kind.rawValue): \(detail)" }
}
