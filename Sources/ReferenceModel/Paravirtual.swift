import Machine

/// The paravirtual MMU's update semantics (SEMANTICS §5.8), as one concrete procedure: Xen's
/// page-type system for a PV domain and `HYPERVISOR_mmu_update` over it.
///
/// A PV guest's tables hold machine frames and are the tables the hardware walks (WALK64,
/// §1.7, with no nested stage). A frame is either a page table of one level (L1 … L5) or not;
/// a table frame is never mapped writable, and a frame mapped writable never becomes a table.
/// Each frame counts the references that hold its type (entries of the level above, and a pin)
/// and the writable L1 mappings of it, as Xen's `struct page_info` does:
///
/// | rule (§5.8 step 1c)                                          | check                      |
/// |--------------------------------------------------------------|----------------------------|
/// | the page holding the entry is a validated table of type Lk  | ``tableLevel(_:)`` > 0      |
/// | a not-present entry                                          | always valid               |
/// | reserved bits (§1.3 masks, the guest's NXE and MAXPHYADDR)   | rejected                   |
/// | a large page (PS in an L2/L3 entry)                          | rejected (no PV superpages)|
/// | an L1 entry with R/W = 1                                     | target frame is no table   |
/// | an Lk entry, k > 1                                           | target validates as L(k−1) |
///
/// Updates take the new entry's references before dropping the old one's (`get` before `put`),
/// so rewriting an entry with itself always succeeds. The type of a table whose last reference
/// goes (and that is not pinned) is dropped, and what its entries held is released in turn.
/// Nothing here flushes a TLB: stale translations persist until the guest asks (§5.8, §6.1).
public struct ParavirtualTypes: Sendable {
  /// What the type system knows of one frame.
  public struct Frame: Hashable, Sendable {
    /// 0 when the frame is not a table, else its level.
    public var level = 0
    /// References holding the type: entries of the level above, and the pin.
    public var typeReferences = 0
    /// Writable L1 entries that map the frame.
    public var writableMappings = 0
    /// Pinned as a root (`MMUEXT_PIN_Lx_TABLE`, `MMUEXT_NEW_BASEPTR`).
    public var pinned = false
  }

  /// Frames the type system has seen, by frame number.
  public private(set) var frames: [UInt64: Frame] = [:]
  /// The frame number of the pinned root.
  public private(set) var root: UInt64 = 0
  /// Paging levels of the domain: 4 or 5.
  public let levels: Int
  private let addressBits: Int
  private let vendor: Vendor
  private let gigabytePages: Bool
  private let executeDisable: Bool

  /// The x86 entry format the guest's entries are validated against.
  private var format: X86Format<Concrete> {
    X86Format(
      levels: levels, addressBits: addressBits, vendor: vendor, gigabytePages: gigabytePages,
      executeDisable: executeDisable)
  }

  /// An empty type system for a domain with `levels` levels and the guest's reserved-bit
  /// rules: MAXPHYADDR, vendor, 1-GiB support and EFER.NXE.
  public init(
    levels: Int, addressBits: Int, vendor: Vendor, gigabytePages: Bool, executeDisable: Bool
  ) {
    self.levels = levels
    self.addressBits = addressBits
    self.vendor = vendor
    self.gigabytePages = gigabytePages
    self.executeDisable = executeDisable
  }

  /// The level of the table held in frame `frame`, or 0 if it is not a table.
  public func tableLevel(_ frame: UInt64) -> Int { frames[frame]?.level ?? 0 }

  /// Validates and pins the domain's first root (the domain builder's `MMUEXT_PIN_L4_TABLE`).
  public mutating func pinRoot(_ frame: UInt64, memory: FrameMemory) -> Bool {
    guard acquireTable(frame, level: levels, memory: memory) else { return false }
    frames[frame, default: Frame()].pinned = true
    root = frame
    return true
  }

  /// `MMUEXT_NEW_BASEPTR`: the new root must validate as a top-level table; it is pinned, and
  /// the old root unpinned and released.
  public mutating func newBasePointer(_ frame: UInt64, memory: FrameMemory) -> Bool {
    guard acquireTable(frame, level: levels, memory: memory) else { return false }
    if frame == root {
      releaseTable(frame, level: levels, memory: memory)  // the pin already holds it
      return true
    }
    let old = root
    frames[frame, default: Frame()].pinned = true
    root = frame
    frames[old]?.pinned = false
    releaseTable(old, level: levels, memory: memory)
    return true
  }

  /// One `MMU_NORMAL_PT_UPDATE` or `MMU_PT_UPDATE_PRESERVE_AD` request (§5.8 steps 1c–1d) at
  /// machine address `entry` with the machine-frame value `value`: `nil` if it fails
  /// validation (nothing changes), else the value now stored, which the caller writes.
  public mutating func update(
    entry: UInt64, value: UInt64, preserveAccessedDirty: Bool, memory: FrameMemory
  ) -> UInt64? {
    let level = tableLevel(entry >> 12)
    guard level > 0 else { return nil }
    let old = memory[entry]
    var new = value
    if preserveAccessedDirty { new |= old & (1 << X86Bit.accessed | 1 << X86Bit.dirty) }
    guard acquireEntry(new, level: level, memory: memory) else { return nil }
    releaseEntry(old, level: level, memory: memory)
    return new
  }

  /// `get_page_type(frame, L<level>)`: one more type reference, validating every entry the
  /// first time the frame takes the type.
  mutating func acquireTable(_ frame: UInt64, level: Int, memory: FrameMemory) -> Bool {
    var info = frames[frame] ?? Frame()
    if info.level == level {
      info.typeReferences += 1
      frames[frame] = info
      return true
    }
    guard info.level == 0, info.writableMappings == 0 else { return false }
    info.level = level
    info.typeReferences = 1
    frames[frame] = info
    for index in 0..<UInt64(512) {
      guard acquireEntry(memory[frame << 12 | index << 3], level: level, memory: memory) else {
        for earlier in 0..<index {
          releaseEntry(memory[frame << 12 | earlier << 3], level: level, memory: memory)
        }
        frames[frame]?.level = 0
        frames[frame]?.typeReferences = 0
        return false
      }
    }
    return true
  }

  /// `put_page_type`: one reference less; the last one (without a pin) drops the type and
  /// releases what the table's entries held.
  mutating func releaseTable(_ frame: UInt64, level: Int, memory: FrameMemory) {
    guard var info = frames[frame], info.level == level, info.typeReferences > 0 else { return }
    info.typeReferences -= 1
    frames[frame] = info
    guard info.typeReferences == 0, !info.pinned else { return }
    frames[frame]?.level = 0
    for index in 0..<UInt64(512) {
      releaseEntry(memory[frame << 12 | index << 3], level: level, memory: memory)
    }
  }

  /// §5.8 step 1c for one entry of a level-`level` table: takes the references it needs, or
  /// fails and takes none.
  mutating func acquireEntry(_ entry: UInt64, level: Int, memory: FrameMemory) -> Bool {
    let d = Concrete()
    guard format.isPresent(d, entry) else { return true }
    let leaf = format.isLeaf(d, entry, level: level)
    guard !format.isMalformed(d, entry, level: level, leaf: leaf) else { return false }
    let target = format.address(d, entry) >> 12
    if level == 1 {
      guard entry >> X86Bit.writable & 1 == 1 else { return true }
      guard tableLevel(target) == 0 else { return false }
      frames[target, default: Frame()].writableMappings += 1
      return true
    }
    guard !leaf else { return false }
    return acquireTable(target, level: level - 1, memory: memory)
  }

  /// Drops what an entry of a level-`level` table holds.
  mutating func releaseEntry(_ entry: UInt64, level: Int, memory: FrameMemory) {
    let d = Concrete()
    guard format.isPresent(d, entry) else { return }
    let target = format.address(d, entry) >> 12
    if level == 1 {
      if entry >> X86Bit.writable & 1 == 1, frames[target]?.writableMappings ?? 0 > 0 {
        frames[target]?.writableMappings -= 1
      }
    } else if !format.isLeaf(d, entry, level: level) {
      releaseTable(target, level: level - 1, memory: memory)
    }
  }
}
