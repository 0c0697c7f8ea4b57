import Machine

/// The three ways a hypervisor virtualizes memory, each a ``VirtualMMU``.
public enum MMUMode: String, CaseIterable, Hashable, Sendable {
  /// Hardware nested paging: the two-dimensional walk over guest tables and EPT or NPT
  /// (``NestedMMU``).
  case nested
  /// Shadow paging: the hypervisor keeps tables of guest-virtual to host-physical
  /// translations that the hardware walks (``ShadowMMU``).
  case shadow
  /// Paravirtual paging: the guest's tables hold machine frames and every update goes through
  /// a validating hypercall (``ParavirtualMMU``).
  case paravirtual
}

/// A simulated memory-virtualization unit: one API for the three modes, so the same trace
/// runs under each and their costs can be compared.
public protocol VirtualMMU: AnyObject {
  /// The virtualization strategy.
  var mode: MMUMode { get }

  /// Applies one trace operation and reports what it observed, VM exits included.
  func apply(_ operation: TraceOperation) -> TraceObservation

  /// Translates one guest access: the fast path of ``apply(_:)`` for `.access` (exits are
  /// counted in ``statistics`` but not listed).
  func translate(_ linearAddress: UInt64, _ access: Access) -> Outcome

  /// Exits, walks and memory references since creation or the last ``resetStatistics()``.
  var statistics: MMUStatistics { get }

  /// Zeroes ``statistics``.
  func resetStatistics()

  /// The machine as it is now: memory (A/D flags set, tables written, shadow tables built),
  /// registers, and the nested or shadow root, in the snapshot format.
  func snapshot() -> MachineState
}

/// Choices that shape an MMU: cache sizes and the IMPL choices of SEMANTICS §8 that are cheap
/// to make configurable. Every value is one the architecture allows.
public struct MMUConfiguration: Hashable, Sendable {
  /// TLB entries (direct-mapped); 0 turns the TLB off.
  public var tlbEntries: Int
  /// Entries per level of each paging-structure cache (direct-mapped); 0 turns them off.
  /// Used under nested paging (combined and guest-physical caches).
  public var pagingStructureCacheEntries: Int
  /// SEMANTICS §4.1 IMPL: write guest A/D flags before the final nested translation (`true`)
  /// or after it, as KVM's emulated walker does (`false`, the default).
  public var accessedDirtyBeforeFinalTranslation: Bool
  /// SEMANTICS §2.4/§8 IMPL: set qualification bit 0 on an EPT violation caused by a guest
  /// A/D write (default `false`).
  public var eptReadBitOnAccessedDirtyWrite: Bool
  /// SEMANTICS §3.2/§8 UNVERIFIED: guest-table reads, performed as writes, set the NPT leaf's
  /// D flag (default `true`).
  public var nptDirtyOnTableReads: Bool
  /// The VPID (ASID) the guest runs with until a trace writes another.
  public var initialVPID: UInt64
  /// Shadow paging: what a guest write to a write-protected level-1 table does.
  public var shadowWritePolicy: ShadowWritePolicy
  /// Shadow paging: the host physical address where shadow tables are placed, growing
  /// upward; `nil` puts them in the upper half of the host's physical address space.
  public var shadowTableBase: UInt64?
  #if NESTCHECK_BUGS
    /// Bugs to build into the MMU, for testing that the oracle finds them (``InjectedBug``).
    /// Debug builds only: release builds have no such field.
    public var injectedBugs: Set<InjectedBug> = []
  #endif

  /// The defaults: 1024-entry TLB, 1024-entry paging-structure caches, KVM's choices.
  public init(
    tlbEntries: Int = 1024, pagingStructureCacheEntries: Int = 1024,
    accessedDirtyBeforeFinalTranslation: Bool = false,
    eptReadBitOnAccessedDirtyWrite: Bool = false, nptDirtyOnTableReads: Bool = true,
    initialVPID: UInt64 = 1, shadowWritePolicy: ShadowWritePolicy = .unsyncLevel1,
    shadowTableBase: UInt64? = nil
  ) {
    self.tlbEntries = tlbEntries
    self.pagingStructureCacheEntries = pagingStructureCacheEntries
    self.accessedDirtyBeforeFinalTranslation = accessedDirtyBeforeFinalTranslation
    self.eptReadBitOnAccessedDirtyWrite = eptReadBitOnAccessedDirtyWrite
    self.nptDirtyOnTableReads = nptDirtyOnTableReads
    self.initialVPID = initialVPID
    self.shadowWritePolicy = shadowWritePolicy
    self.shadowTableBase = shadowTableBase
  }

  /// Every cache off: each access is a full walk (benchmark B1).
  public static var uncached: MMUConfiguration {
    MMUConfiguration(tlbEntries: 0, pagingStructureCacheEntries: 0)
  }
}

/// What a shadow MMU does when the guest writes one of its level-1 page tables that is
/// write-protected (SEMANTICS §5.3 step 5c).
public enum ShadowWritePolicy: String, CaseIterable, Hashable, Sendable {
  /// Emulate every such write and update the shadow entries at once: one trap per write.
  case emulate
  /// Unsync the table on the first write and let later writes through; resync at INVLPG
  /// and CR3 writes (KVM's unsync pages, Xen's out-of-sync L1s). Upper levels are emulated.
  case unsyncLevel1 = "unsync-level-1"
}

/// Why an MMU could not be made from a snapshot.
public struct MMUSetupError: Error, Hashable, Sendable, CustomStringConvertible {
  /// What is wrong, in a sentence.
  public var message: String

  /// Makes an error.
  public init(_ message: String) { self.message = message }

  /// The message.
  public var description: String { message }
}

/// Makes an MMU of `mode` over a snapshot.
///
/// The nested mode runs the snapshot as it is. The shadow mode reads the snapshot's nested
/// tables as the hypervisor's guest-physical map and builds shadow tables on demand. The
/// paravirtual mode rewrites the guest's tables to hold machine frames, as a PV domain builder
/// does, and validates them as a pinned root.
public func makeMMU(
  _ mode: MMUMode, state: MachineState, configuration: MMUConfiguration = MMUConfiguration()
) throws(MMUSetupError) -> any VirtualMMU {
  switch mode {
  case .nested: try NestedMMU(state, configuration: configuration)
  case .shadow: try ShadowMMU(state, configuration: configuration)
  case .paravirtual: try ParavirtualMMU(state, configuration: configuration)
  }
}
