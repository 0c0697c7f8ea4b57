#if NESTCHECK_BUGS
  /// A realistic MMU bug that a test build of the fast MMU can be made with
  /// (``MMUConfiguration/injectedBugs``), so that the oracle's tests can check that fuzzing finds
  /// every one of them (issue 5, item 6).
  ///
  /// Each is a small branch at the one place the rule it breaks lives, taken from the historical
  /// bugs of SEMANTICS §1.9, §2.8, §3.6, §5.9 and the TLB rules of §6. The whole catalogue
  /// exists only in debug builds (`NESTCHECK_BUGS`): a release build has neither this type, nor
  /// the configuration field, nor any branch that tests for a bug.
  public enum InjectedBug: String, CaseIterable, Sendable {
    // Guest walk and permissions (every mode that walks guest tables).
    case xdNotInherited = "xd-not-inherited"
    case writeProtectIgnored = "write-protect-ignored"
    case accessedNotSetOnSuccess = "accessed-not-set-on-success"
    case dirtySetOnFaultingWrite = "dirty-set-on-faulting-write"
    case protectionKeyBitDropped = "protection-key-bit-dropped"
    case smapRescuesImplicitAccess = "smap-rescues-implicit-access"
    case nonCanonicalAsPageFault = "non-canonical-as-page-fault"
    case fetchBitWithoutSMEPOrNXE = "fetch-bit-without-smep-or-nxe"
    case amdBit8NotReserved = "amd-bit-8-not-reserved"
    case largePageOffsetTruncated = "large-page-offset-truncated"
    case finalTranslationBeforeGuestFault = "final-translation-before-guest-fault"
    // EPT.
    case eptTableReadsNotWrites = "ept-table-reads-not-writes"
    case eptQualificationBitsReordered = "ept-qualification-bits-reordered"
    case eptMisconfigurationAsViolation = "ept-misconfiguration-as-violation"
    case inveptKeepsCombinedMappings = "invept-keeps-combined-mappings"
    // NPT.
    case nptAccessesNotUser = "npt-accesses-not-user"
    case nptFinalBitAlwaysSet = "npt-final-bit-always-set"
    case nptTableReadsNotWrites = "npt-table-reads-not-writes"
    // TLB and flushes.
    case invlpgKeepsEntry = "invlpg-keeps-entry"
    case pgeToggleKeepsGlobals = "pge-toggle-keeps-globals"
    case pcidIgnoredInTag = "pcid-ignored-in-tag"
    case writeThroughCleanEntry = "write-through-clean-entry"
    case faultKeepsStaleEntry = "fault-keeps-stale-entry"
    // Shadow paging.
    case shadowRoleIgnoresWriteProtect = "shadow-role-ignores-write-protect"
    case staleWriteProtectInRole = "stale-write-protect-in-role"
    case inheritedAccessFromParentOnly = "inherited-access-from-parent-only"
    case unsyncLinkedWithoutSync = "unsync-linked-without-sync"
    case writableShadowAliasOfPageTable = "writable-shadow-alias-of-page-table"
    case cleanPageMappedWritable = "clean-page-mapped-writable"
    // Paravirtual paging.
    case paravirtualWritableTableMapping = "paravirtual-writable-table-mapping"
    case paravirtualBatchContinuesAfterFailure = "paravirtual-batch-continues-after-failure"

    /// The modes whose observations the bug changes.
    public var modes: Set<MMUMode> {
      switch self {
      case .xdNotInherited, .writeProtectIgnored, .protectionKeyBitDropped,
        .smapRescuesImplicitAccess, .fetchBitWithoutSMEPOrNXE, .amdBit8NotReserved,
        .accessedNotSetOnSuccess, .dirtySetOnFaultingWrite:
        [.nested, .shadow, .paravirtual]
      case .nonCanonicalAsPageFault, .pgeToggleKeepsGlobals: [.nested, .paravirtual]
      case .largePageOffsetTruncated: [.nested, .shadow]
      case .finalTranslationBeforeGuestFault, .eptTableReadsNotWrites,
        .eptQualificationBitsReordered, .eptMisconfigurationAsViolation,
        .inveptKeepsCombinedMappings, .nptAccessesNotUser, .nptFinalBitAlwaysSet,
        .nptTableReadsNotWrites, .invlpgKeepsEntry, .pcidIgnoredInTag, .writeThroughCleanEntry,
        .faultKeepsStaleEntry:
        [.nested]
      case .shadowRoleIgnoresWriteProtect, .staleWriteProtectInRole,
        .inheritedAccessFromParentOnly, .unsyncLinkedWithoutSync,
        .writableShadowAliasOfPageTable, .cleanPageMappedWritable:
        [.shadow]
      case .paravirtualWritableTableMapping, .paravirtualBatchContinuesAfterFailure:
        [.paravirtual]
      }
    }

    /// The section of SEMANTICS.md listing the class of historical bug this one belongs to:
    /// §1.9 (guest paging), §2.8 (EPT), §3.6 (NPT), §4.1 (the two-dimensional walk), §5.9
    /// (shadow paging), §5.8 (paravirtual paging) or §6 (TLBs and flushes). ``summary`` cites
    /// the rule it breaks.
    public var section: String {
      switch self {
      case .xdNotInherited, .writeProtectIgnored, .accessedNotSetOnSuccess,
        .dirtySetOnFaultingWrite, .protectionKeyBitDropped, .smapRescuesImplicitAccess,
        .nonCanonicalAsPageFault, .fetchBitWithoutSMEPOrNXE, .amdBit8NotReserved,
        .largePageOffsetTruncated:
        "§1.9"
      case .finalTranslationBeforeGuestFault: "§4.1"
      case .eptTableReadsNotWrites, .eptQualificationBitsReordered,
        .eptMisconfigurationAsViolation:
        "§2.8"
      case .nptAccessesNotUser, .nptFinalBitAlwaysSet, .nptTableReadsNotWrites: "§3.6"
      case .inveptKeepsCombinedMappings, .invlpgKeepsEntry, .pgeToggleKeepsGlobals,
        .pcidIgnoredInTag, .writeThroughCleanEntry, .faultKeepsStaleEntry:
        "§6"
      case .shadowRoleIgnoresWriteProtect, .staleWriteProtectInRole,
        .inheritedAccessFromParentOnly, .unsyncLinkedWithoutSync,
        .writableShadowAliasOfPageTable, .cleanPageMappedWritable:
        "§5.9"
      case .paravirtualWritableTableMapping, .paravirtualBatchContinuesAfterFailure: "§5.8"
      }
    }

    /// What goes wrong, and where the bug comes from.
    public var summary: String {
      switch self {
      case .xdNotInherited:
        "XD is taken from the leaf only, not ORed over every level, so a page under an XD "
          + "directory is executable (SEMANTICS §1.5; kvm-unit-tests access.c pde.nx)."
      case .writeProtectIgnored:
        "CR0.WP is ignored: supervisor writes to read-only pages succeed (SEMANTICS §1.5 rule 6; "
          + "access.c check_toggle_cr0_wp)."
      case .accessedNotSetOnSuccess:
        "A is not set in the guest entries of a successful walk, so a later walk must write it "
          + "again (SEMANTICS §1.8)."
      case .dirtySetOnFaultingWrite:
        "A and D are set in the guest leaf when a write faults on protection; the leaf must be "
          + "left untouched (SEMANTICS §1.8; access.c compares the PTE exactly)."
      case .protectionKeyBitDropped:
        "The #PF PK bit is left out when another rule denies too; it is set whenever the key "
          + "check denies (SEMANTICS §1.5 rule 7; KVM permission_fault, QEMU, Xen)."
      case .smapRescuesImplicitAccess:
        "EFLAGS.AC rescues implicit supervisor accesses from SMAP; only explicit ones may be "
          + "(SEMANTICS §1.5 rule 5; KVM 4f4aa80e3b88)."
      case .nonCanonicalAsPageFault:
        "A non-canonical address raises #PF instead of #GP (SEMANTICS §1.9; QEMU issue #676, "
          + "\"target-i386: mmu: fix handling of noncanonical virtual addresses\")."
      case .fetchBitWithoutSMEPOrNXE:
        "The #PF I/D bit is reported for fetches without CR4.SMEP or EFER.NXE (SEMANTICS §1.6, "
          + "§5.3: KVM forces NX in the shadow and must clear I/D when injecting)."
      case .amdBit8NotReserved:
        "Bit 8 of guest PML4Es and PML5Es is not reserved on AMD (SEMANTICS §1.3, §1.9; KVM "
          + "nonleaf_bit8_rsvd, Xen guest_l4e_rsvd_bits)."
      case .largePageOffsetTruncated:
        "A 2-MiB or 1-GiB guest page keeps only the 4-KiB offset of the address, so every part "
          + "of it maps to its first 4 KiB (SEMANTICS §1.7 step 8, §5.5 I2)."
      case .finalTranslationBeforeGuestFault:
        "The final guest-physical address is translated before the guest's permission check, "
          + "so a nested fault wins over the guest #PF; the guest fault has priority and the "
          + "final GPA is never translated (SEMANTICS §4.1)."
      case .eptTableReadsNotWrites:
        "With EPT A/D flags on, reads of guest paging entries are checked as reads, not writes "
          + "(SEMANTICS §2.4, §2.8; KVM ae1e2d1082ae)."
      case .eptQualificationBitsReordered:
        "EPT-violation qualification bits 3–5 come from the walker's internal access mask "
          + "(X, W, R) instead of the raw R, W, X (SEMANTICS §2.8; KVM 0780516a18f8)."
      case .eptMisconfigurationAsViolation:
        "An EPT misconfiguration is reported as an EPT violation (SEMANTICS §2.3)."
      case .inveptKeepsCombinedMappings:
        "Single-context INVEPT drops guest-physical mappings but keeps combined ones, so a "
          + "restricting EPT change is ignored after the INVEPT (SEMANTICS §6.2)."
      case .nptAccessesNotUser:
        "Nested NPT accesses are not treated as user accesses: U/S = 0 in a nested entry does "
          + "not fault (SEMANTICS §3.2; QEMU walks NPT with MMU_USER_IDX)."
      case .nptFinalBitAlwaysSet:
        "#NPF EXITINFO1 always has bit 32 (final translation), also for guest-table accesses "
          + "(SEMANTICS §3.6; KVM's synthesized nested #NPF, \"TODO: track the cause\")."
      case .nptTableReadsNotWrites:
        "Reads of guest paging entries through NPT are checked as reads, not writes "
          + "(SEMANTICS §3.2; KVM PFERR_NESTED_GUEST_PAGE)."
      case .invlpgKeepsEntry:
        "INVLPG drops the paging-structure caches but not the TLB entry of the address "
          + "(SEMANTICS §6.1)."
      case .pgeToggleKeepsGlobals:
        "A MOV to CR4 that toggles PGE flushes nothing, leaving global and non-global entries "
          + "(SEMANTICS §6.1: it must flush everything, globals included)."
      case .pcidIgnoredInTag:
        "TLB entries are not tagged with the PCID, so after a no-flush switch to another PCID "
          + "the old address space's translations are used (SEMANTICS §6.1)."
      case .writeThroughCleanEntry:
        "A write through a TLB entry whose dirty flag is clear uses it without walking, so the "
          + "guest's D flag is never set (SEMANTICS §6.1 TLB_ACCESS step 4)."
      case .faultKeepsStaleEntry:
        "A #PF does not invalidate the TLB entry of the faulting address, so the stale "
          + "translation that led to it is used again (SEMANTICS §6.1)."
      case .shadowRoleIgnoresWriteProtect:
        "The shadow page role is not split by guest CR0.WP, so writable kernel entries made with "
          + "WP = 0 are reused with WP = 1 (SEMANTICS §5.1, §5.5 I6; KVM role.cr0_wp)."
      case .staleWriteProtectInRole:
        "A MOV to CR0 that only toggles WP keeps the old WP in the MMU's role and permission "
          + "checks (SEMANTICS §1.9, §5.9; access.c check_toggle_cr0_wp)."
      case .inheritedAccessFromParentOnly:
        "A shadow page's role takes the access of its parent guest entry only, not the AND over "
          + "all ancestors, so a table shared by paths of different rights gets one shadow "
          + "(SEMANTICS §5.9; KVM b1bd5cba3306, access.c check_effective_sp_permissions)."
      case .unsyncLinkedWithoutSync:
        "An unsync shadow page is linked into a newly present guest entry without being synced "
          + "first (SEMANTICS §5.4, §5.9; KVM 65855ed8b034)."
      case .writableShadowAliasOfPageTable:
        "A guest page table mapped by the guest itself gets a writable shadow alias, so writes "
          + "to it no longer trap (SEMANTICS §5.2 step 5, §5.5 I5)."
      case .cleanPageMappedWritable:
        "A clean guest page is mapped writable on a read fault, so the guest's D flag is never "
          + "set when it is written (SEMANTICS §5.2 step 2; KVM protect_clean_gpte)."
      case .paravirtualWritableTableMapping:
        "Paravirtual validation accepts an L1 entry mapping a page-table frame writable "
          + "(SEMANTICS §5.8)."
      case .paravirtualBatchContinuesAfterFailure:
        "A paravirtual batch goes on past a request that fails validation instead of stopping "
          + "there (SEMANTICS §5.8 PV_MMU_UPDATE step 1c)."
      }
    }
  }

  /// A set of ``InjectedBug``s as a bit mask, so a bug branch costs one test of a bit.
  struct InjectedBugSet: Hashable {
    private var bits: UInt64 = 0

    /// No bugs.
    init() {}

    init(_ bugs: Set<InjectedBug>) {
      for bug in bugs { bits |= Self.bit(bug) }
    }

    @inline(__always)
    func contains(_ bug: InjectedBug) -> Bool { bits & Self.bit(bug) != 0 }

    @inline(__always)
    private static func bit(_ bug: InjectedBug) -> UInt64 { 1 << bug.ordinal }
  }

  extension InjectedBug {
    /// The bug's position in ``allCases``: its bit in an ``InjectedBugSet``.
    var ordinal: UInt64 {
      switch self {
      case .xdNotInherited: 0
      case .writeProtectIgnored: 1
      case .accessedNotSetOnSuccess: 2
      case .dirtySetOnFaultingWrite: 3
      case .protectionKeyBitDropped: 4
      case .smapRescuesImplicitAccess: 5
      case .nonCanonicalAsPageFault: 6
      case .fetchBitWithoutSMEPOrNXE: 7
      case .amdBit8NotReserved: 8
      case .largePageOffsetTruncated: 9
      case .finalTranslationBeforeGuestFault: 10
      case .eptTableReadsNotWrites: 11
      case .eptQualificationBitsReordered: 12
      case .eptMisconfigurationAsViolation: 13
      case .inveptKeepsCombinedMappings: 14
      case .nptAccessesNotUser: 15
      case .nptFinalBitAlwaysSet: 16
      case .nptTableReadsNotWrites: 17
      case .invlpgKeepsEntry: 18
      case .pgeToggleKeepsGlobals: 19
      case .pcidIgnoredInTag: 20
      case .writeThroughCleanEntry: 21
      case .faultKeepsStaleEntry: 22
      case .shadowRoleIgnoresWriteProtect: 23
      case .staleWriteProtectInRole: 24
      case .inheritedAccessFromParentOnly: 25
      case .unsyncLinkedWithoutSync: 26
      case .writableShadowAliasOfPageTable: 27
      case .cleanPageMappedWritable: 28
      case .paravirtualWritableTableMapping: 29
      case .paravirtualBatchContinuesAfterFailure: 30
      }
    }
  }

  extension MMUConfiguration {
    /// ``injectedBugs`` as a bit mask.
    var bugs: InjectedBugSet { InjectedBugSet(injectedBugs) }
  }
#endif
