/// The rule that decided an outcome, for `explain` and for reports. Each case cites the step of
/// SEMANTICS.md it implements; the raw value is how the rule travels through a domain.
public enum Rule: UInt64, CaseIterable, Sendable {
  /// Every check passed.
  case translated = 0
  /// §1.2: the linear address is not canonical: #GP(0) before any walk.
  case nonCanonical
  /// §1.7 step 4b: a paging entry on the path has P = 0.
  case notPresent
  /// §1.7 step 4d (§1.3 masks): a present paging entry has a reserved bit set.
  case reservedBit
  /// §1.5 rule 1: user-mode access to a supervisor-mode address.
  case userAccessToSupervisorAddress
  /// §1.5 rule 2: user-mode write where R/W = 0 on the path.
  case userWriteToReadOnly
  /// §1.5 rule 3: fetch with EFER.NXE = 1 and XD = 1 on the path.
  case fetchFromExecuteDisabled
  /// §1.5 rule 4: supervisor-mode fetch from a user-mode address with CR4.SMEP = 1.
  case supervisorExecutionPrevention
  /// §1.5 rule 5: supervisor-mode data access to a user-mode address with CR4.SMAP = 1, not
  /// rescued by EFLAGS.AC (explicit accesses only).
  case supervisorAccessPrevention
  /// §1.5 rule 6: supervisor-mode write where R/W = 0 on the path with CR0.WP = 1.
  case supervisorWriteToReadOnly
  /// §1.5 rule 7: the protection key denies the data access.
  case protectionKey
  /// §2.3 V1: an EPT entry on the path is not present.
  case eptNotPresent
  /// §2.3 M1: an EPT entry is write-only (XWR = 010) or write-execute (110).
  case eptWriteWithoutRead
  /// §2.3 M2: an EPT entry is execute-only (XWR = 100) where that is unsupported.
  case eptExecuteOnlyUnsupported
  /// §2.3 M3: an EPT entry has a reserved bit set.
  case eptReservedBit
  /// §2.3 M4: an EPT leaf has memory type 2, 3 or 7.
  case eptBadMemoryType
  /// §2.3 V2: a data read where R = 0 in some EPT entry on the path.
  case eptReadDenied
  /// §2.3 V3: a write where W = 0 in some EPT entry on the path.
  case eptWriteDenied
  /// §2.3 V4: a fetch where X (XS or XU with mode-based execute) = 0 on the path.
  case eptExecuteDenied

  /// One line naming the rule and its SEMANTICS step.
  public var summary: String {
    switch self {
    case .translated: "every check passed"
    case .nonCanonical: "non-canonical linear address (§1.2)"
    case .notPresent: "entry not present (§1.7 step 4b)"
    case .reservedBit: "reserved bit set in a present entry (§1.7 step 4d, §1.3)"
    case .userAccessToSupervisorAddress: "user access to a supervisor-mode address (§1.5 rule 1)"
    case .userWriteToReadOnly: "user write with R/W = 0 on the path (§1.5 rule 2)"
    case .fetchFromExecuteDisabled: "fetch with XD = 1 on the path and EFER.NXE = 1 (§1.5 rule 3)"
    case .supervisorExecutionPrevention:
      "supervisor fetch from a user-mode address with CR4.SMEP = 1 (§1.5 rule 4)"
    case .supervisorAccessPrevention:
      "supervisor data access to a user-mode address with CR4.SMAP = 1, not rescued by "
        + "EFLAGS.AC (§1.5 rule 5)"
    case .supervisorWriteToReadOnly:
      "supervisor write with R/W = 0 on the path and CR0.WP = 1 (§1.5 rule 6)"
    case .protectionKey: "protection key denies the data access (§1.5 rule 7)"
    case .eptNotPresent: "EPT entry not present (§2.3 V1)"
    case .eptWriteWithoutRead: "EPT entry write-only or write-execute (§2.3 M1)"
    case .eptExecuteOnlyUnsupported: "EPT entry execute-only, unsupported (§2.3 M2)"
    case .eptReservedBit: "reserved bit set in an EPT entry (§2.3 M3)"
    case .eptBadMemoryType: "EPT leaf memory type 2, 3 or 7 (§2.3 M4)"
    case .eptReadDenied: "read with R = 0 on the EPT path (§2.3 V2)"
    case .eptWriteDenied: "write with W = 0 on the EPT path (§2.3 V3)"
    case .eptExecuteDenied: "fetch with X = 0 on the EPT path (§2.3 V4)"
    }
  }
}
