import Machine

/// VM exits counted by cause (issue 4, "accounting"): what one workload costs under each
/// virtualization strategy.
public struct VMExitCounts: Hashable, Sendable, CustomStringConvertible {
  private var counts = [Int](repeating: 0, count: VMExitReason.allCases.count)

  /// No exits.
  public init() {}

  /// The number of exits taken for `reason`.
  public subscript(reason: VMExitReason) -> Int {
    get { counts[Self.index(reason)] }
    set { counts[Self.index(reason)] = newValue }
  }

  /// All exits, whatever their cause.
  public var total: Int { counts.reduce(0, +) }

  /// `cause: count` for every cause with at least one exit, or `none`.
  public var description: String {
    let parts = VMExitReason.allCases.filter { self[$0] > 0 }.map { "\($0.rawValue): \(self[$0])" }
    return parts.isEmpty ? "none" : parts.joined(separator: ", ")
  }

  private static func index(_ reason: VMExitReason) -> Int {
    switch reason {
    case .guestPageFault: 0
    case .hypervisorPageFault: 1
    case .writeProtectionTrap: 2
    case .hypercall: 3
    case .eptViolation: 4
    case .eptMisconfiguration: 5
    case .nestedPageFault: 6
    case .invlpg: 7
    case .invpcid: 8
    case .controlRegisterAccess: 9
    }
  }
}

/// What an MMU has done since it was made or its statistics were last reset.
public struct MMUStatistics: Hashable, Sendable {
  /// VM exits by cause.
  public var exits = VMExitCounts()
  /// Walks the simulated hardware performed: TLB misses, and hits that had to re-walk.
  public var walks = 0
  /// Memory references those walks made: every paging-entry read, guest and nested (A/D
  /// writes are read-modify-writes of entries already counted; SEMANTICS §4.2).
  public var memoryReferences = 0
  /// Walks the hypervisor performed in software: guest walks while handling shadow faults,
  /// guest-physical map lookups.
  public var softwareWalks = 0
  /// Memory references of those software walks.
  public var softwareReferences = 0

  /// No activity.
  public init() {}

  /// Hardware memory references per hardware walk (0 before the first walk).
  public var referencesPerWalk: Double {
    walks == 0 ? 0 : Double(memoryReferences) / Double(walks)
  }
}

/// Counts exits and, while an operation is being applied, records them in order for its
/// observation.
struct ExitRecorder {
  var counts = VMExitCounts()
  /// The exits of the operation in progress, or `nil` outside ``VirtualMMU/apply(_:)``.
  var log: [VMExitReason]?

  mutating func record(_ reason: VMExitReason) {
    counts[reason] += 1
    log?.append(reason)
  }
}
