import Machine

/// The EPT pointer (Intel SDM Vol. 3C §25.6.11, SEMANTICS §2.1):
///
/// | bits  | 2:0            | 5:3              | 6          | 7   | 11:8 | N-1:12    | 63:N |
/// |-------|----------------|------------------|------------|-----|------|-----------|------|
/// | field | memory type    | walk length − 1  | A/D enable | SSS | rsvd | PML4/PML5 | rsvd |
struct EPTPointer: Hashable {
  /// The root table's host physical address; also the EP4TA that tags cached mappings.
  let root: UInt64
  /// 4 or 5.
  let levels: Int
  /// EPTP[6]: accessed and dirty flags are on.
  let accessedDirty: Bool

  /// Decodes an EPTP; `nil` for a value VM entry would reject (memory type other than UC or
  /// WB, walk length other than 4 or 5, reserved bits set). Such a value never causes an EPT
  /// violation or misconfiguration (SEMANTICS §2.1).
  init?(_ eptp: UInt64, addressBits: Int) {
    let memoryType = eptp & 7
    let length = (eptp >> 3) & 7
    guard memoryType == 0 || memoryType == 6, length == 3 || length == 4,
      eptp & X86ReservedBits.bits(11, 8) == 0,
      eptp & X86ReservedBits.bits(63, UInt64(addressBits)) == 0
    else { return nil }
    root = eptp & X86ReservedBits.bits(UInt64(addressBits) - 1, 12)
    levels = Int(length) + 1
    accessedDirty = eptp & (1 << 6) != 0
  }
}

/// The EPT paging-structure entry (Intel SDM Vol. 3C §28.2.2, SEMANTICS §2.2):
///
/// | bits  | 0 | 1 | 2      | 5:3      | 6    | 7     | 8 | 9        | 10 | N-1:12  | 51:N | 63  |
/// |-------|---|---|--------|----------|------|-------|---|----------|----|---------|------|-----|
/// | field | R | W | X (XS) | mem type | IPAT | large | A | D (leaf) | XU | address | rsvd | SVE |
///
/// Memory type and IPAT exist in leaves only; bits 7:3 are reserved in PML5Es and PML4Es and
/// bits 6:3 in entries that reference a table. XU is bit 10 with mode-based execute control.
struct EPTFormat {
  static let read: UInt64 = 1 << 0
  static let write: UInt64 = 1 << 1
  static let execute: UInt64 = 1 << 2
  static let accessed: UInt64 = 1 << 8
  static let dirty: UInt64 = 1 << 9
  static let userExecute: UInt64 = 1 << 10
  /// R, W, X and XU: the bits ANDed over a walk (SEMANTICS §2.7 step 2b).
  static let permissionBits: UInt64 = read | write | execute | userExecute

  /// N: bits N-1:12 hold addresses, bits 51:N are reserved.
  let addressBits: Int
  let executeOnly: Bool
  let modeBasedExecute: Bool
  /// Bit k set when bits 2:0 = k make an entry that is present (V1) and escapes M1 and M2:
  /// derived from ``isPresent(_:)``, ``writeWithoutRead(_:)`` and
  /// ``unsupportedExecuteOnly(_:)`` without mode-based execute control, so the hot path tests
  /// all three with one lookup.
  private(set) var acceptableEncodings: UInt64
  /// Reserved bits 51:N, in every entry.
  let high: UInt64
  /// The level-specific reserved bits, indexed by `2 · level + leaf`: bits 7:3 in PML5Es and
  /// PML4Es, bits 6:3 in entries that reference a table, bits 29:12 and 20:12 in 1-GiB and
  /// 2-MiB leaves, bit 7 in PDPTEs without 1-GiB pages (KVM's `__reset_rsvds_bits_mask_ept`).
  let levelBits: UnsafePointer<UInt64>

  /// The format for a configuration.
  init(_ ept: ExtendedPageTables) {
    addressBits = ept.physicalAddressBits
    executeOnly = ept.executeOnly
    modeBasedExecute = ept.modeBasedExecute
    high = X86ReservedBits.bits(51, UInt64(addressBits))
    levelBits = UnsafePointer(Self.tables[ept.gigabytePages ? 1 : 0])
    acceptableEncodings = 0
    var acceptable: UInt64 = 0
    for encoding in UInt64(0)..<8
    where isPresent(encoding) && !writeWithoutRead(encoding)
      && !unsupportedExecuteOnly(encoding)
    {
      acceptable |= 1 << encoding
    }
    acceptableEncodings = acceptable
  }

  nonisolated(unsafe) private static let tables = [
    table(gigabytePages: false), table(gigabytePages: true),
  ]

  private static func table(gigabytePages: Bool) -> UnsafeMutablePointer<UInt64> {
    let top = X86ReservedBits.bits(7, 3)
    let directory = X86ReservedBits.bits(6, 3)
    let noGigabyte: UInt64 = gigabytePages ? 0 : 1 << 7
    let values: [UInt64] = [
      0, 0,  // no level 0
      0, 0,  // PTE
      directory, X86ReservedBits.bits(20, 12),  // PDE: table, 2 MiB
      directory, X86ReservedBits.bits(29, 12) | noGigabyte,  // PDPTE: table, 1 GiB
      top, top,  // PML4E
      top, top,  // PML5E
    ]
    let table = UnsafeMutablePointer<UInt64>.allocate(capacity: values.count)
    table.initialize(from: values, count: values.count)
    return table
  }

  /// The reserved bits of an entry at `level`.
  @inline(__always)
  func reserved(level: Int, leaf: Bool) -> UInt64 {
    high | levelBits[level &* 2 &+ (leaf ? 1 : 0)]
  }

  /// Whether the walk may go on past `entry`: present (V1) and not misconfigured (M1–M4). One
  /// test on the hot path; ``isPresent(_:)`` and ``isMisconfigured(_:level:leaf:)`` tell the
  /// two failures apart when it fails. Without mode-based execute control, V1, M1 and M2 are
  /// one lookup of bits 2:0 in ``acceptableEncodings``, and the test has no branches.
  @inline(__always)
  func isUsable(_ entry: UInt64, level: Int, leaf: Bool) -> Bool {
    if modeBasedExecute {
      return isPresent(entry) && !isMisconfigured(entry, level: level, leaf: leaf)
    }
    let leafBit: UInt64 = leaf ? 1 : 0
    let bad =
      ~acceptableEncodings &>> (entry & 7) & 1
      | entry & reserved(level: level, leaf: leaf)
      | leafBit & Self.reservedMemoryTypes &>> (entry &>> 3 & 7)
    return bad == 0
  }

  /// SEMANTICS §2.2: present iff bits 2:0 ≠ 0, or bit 10 with mode-based execute control.
  @inline(__always)
  func isPresent(_ entry: UInt64) -> Bool {
    entry & 7 != 0 || (modeBasedExecute && entry & Self.userExecute != 0)
  }

  /// SEMANTICS §2.3 M1–M4, checked on every present entry the walk reaches.
  @inline(__always)
  func isMisconfigured(_ entry: UInt64, level: Int, leaf: Bool) -> Bool {
    writeWithoutRead(entry) || unsupportedExecuteOnly(entry)
      || entry & reserved(level: level, leaf: leaf) != 0
      || (leaf && reservedMemoryType(entry))
  }

  /// M1: bits 2:0 = 010 or 110 (writable, not readable).
  @inline(__always)
  func writeWithoutRead(_ entry: UInt64) -> Bool { entry & 3 == Self.write }

  /// M2: execute-only (R = W = 0, X or XU) where the processor does not support it.
  @inline(__always)
  func unsupportedExecuteOnly(_ entry: UInt64) -> Bool {
    !executeOnly && entry & 3 == 0 && isPresent(entry)
  }

  /// M4: a leaf whose memory type (bits 5:3) is 2, 3 or 7.
  @inline(__always)
  func reservedMemoryType(_ entry: UInt64) -> Bool {
    Self.reservedMemoryTypes &>> (entry &>> 3 & 7) & 1 != 0
  }

  /// Bit k set for each reserved EPT memory type k: 2, 3, 7 (SEMANTICS §2.2).
  static let reservedMemoryTypes: UInt64 = 0b1000_1100
}

/// The exit qualification of an EPT violation (Intel SDM Vol. 3C Table 28-7, SEMANTICS §2.6).
///
/// | bit   | 0    | 1     | 2     | 3     | 4     | 5          | 6          | 7         | 8     |
/// |-------|------|-------|-------|-------|-------|------------|------------|-----------|-------|
/// | field | read | write | fetch | AND R | AND W | AND X (XS) | AND XU     | GLA valid | final |
///
/// Bits 9–11 ("advanced" information) are reported as unsupported: always 0 (an IMPL choice
/// SEMANTICS §8 allows).
enum EPTQualification {
  /// Why the access touched the GPA, in the qualification's access bits 2:0.
  enum Cause {
    /// WALK2D step 7: the final access of the given kind.
    case final(AccessKind)
    /// WALK2D step 3b: reading a guest paging entry; a write with EPT A/D flags on (§2.4).
    case tableRead(accessedDirty: Bool)
    /// WALK2D step 5: writing a guest entry's A/D flags; bit 0 is the IMPL choice.
    case tableWrite(alsoRead: Bool)
  }

  /// The qualification for a violation of `cause`, with `effective` the AND of the raw R, W, X
  /// and XU bits over the entries the walk reached (0 from a not-present entry on).
  static func make(_ cause: Cause, effective: UInt64, modeBasedExecute: Bool) -> UInt64 {
    var q: UInt64
    switch cause {
    case .final(let kind):
      q = (kind == .read ? 1 : 0) | (kind == .write ? 2 : 0) | (kind == .fetch ? 4 : 0)
      q |= 1 << 8
    case .tableRead(let accessedDirty): q = accessedDirty ? 3 : 1
    case .tableWrite(let alsoRead): q = alsoRead ? 3 : 2
    }
    q |= (effective & 7) << 3
    if modeBasedExecute { q |= (effective >> 10 & 1) << 6 }
    return q | 1 << 7  // long-mode walks always have a guest-linear address
  }
}
