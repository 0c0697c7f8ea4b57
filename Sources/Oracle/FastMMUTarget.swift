import FastMMU
import Machine

/// A target that can export the machine as it holds it now: memory with the A/D bits it set,
/// and under shadow paging its shadow tables, for the memory-agreement check and
/// `--prove-every` (docs/fuzzing.md, "campaigns").
public protocol StateExporting: AnyObject {
  /// The machine now, in the snapshot format; `nil` if the target cannot say.
  func exportState() -> MachineState?
}

/// The fast MMU in one of its modes, in process (issue 5, item 2): `fast-mmu:nested`,
/// `fast-mmu:shadow`, `fast-mmu:paravirtual`. It cannot crash or hang the driver short of a
/// trap in the fast MMU itself, and exports its state.
public final class FastMMUTarget: Target, StateExporting {
  /// The mode.
  public let mode: MMUMode
  /// The configuration each reset builds the MMU with (cache sizes, IMPL choices, and in
  /// debug builds the injected bugs).
  public var configuration: MMUConfiguration
  private var mmu: (any VirtualMMU)?

  /// A target for `mode` with `configuration`.
  public init(mode: MMUMode, configuration: MMUConfiguration = MMUConfiguration()) {
    self.mode = mode
    self.configuration = configuration
  }

  /// `fast-mmu:nested` and so on.
  public var name: String { "fast-mmu:" + mode.rawValue }

  /// The oracle mode that judges this target.
  public var oracleMode: OracleMode {
    switch mode {
    case .nested: .nested
    case .shadow: .shadow
    case .paravirtual: .paravirtual
    }
  }

  /// Builds a fresh MMU over `state`; a state the MMU does not cover is refused.
  public func reset(to state: MachineState) throws(TargetError) {
    mmu = nil
    do {
      mmu = try makeMMU(mode, state: state, configuration: configuration)
    } catch {
      throw TargetError(.setupRefused, error.message)
    }
  }

  /// Applies one operation.
  public func apply(_ operation: TraceOperation) throws(TargetError) -> TraceObservation {
    guard let mmu else { throw TargetError(.setupRefused, "no state: reset first") }
    return mmu.apply(operation)
  }

  /// The MMU's snapshot.
  public func exportState() -> MachineState? { mmu?.snapshot() }

  /// The MMU itself, for statistics.
  public var current: (any VirtualMMU)? { mmu }
}
