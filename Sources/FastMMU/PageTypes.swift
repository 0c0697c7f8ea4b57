/// Xen's page types for a PV domain (SEMANTICS §5.8): a frame is either used as a page table
/// of one level (L1 … L5), or not; a table frame may never be mapped writable, and a frame
/// mapped writable may never become a table. Each frame counts the references that hold its
/// type and its writable mappings, as Xen's `struct page_info` does.
struct PageTypes {
  /// What the type system knows about one frame.
  struct Frame {
    /// 0 when the frame is not a table, else its level.
    var level = 0
    /// References holding the type: entries of the level above, and a pin.
    var typeReferences = 0
    /// Writable L1 entries mapping the frame.
    var writableMappings = 0
    /// Pinned as a root (`MMUEXT_PIN_Lx_TABLE` / `MMUEXT_NEW_BASEPTR`).
    var pinned = false
  }

  private(set) var frames: [UInt64: Frame] = [:]
  /// The guest's reserved-bit rules, against which every new entry is validated.
  let reserved: X86ReservedBits
  #if NESTCHECK_BUGS
    /// The bugs of the MMU that validates (``InjectedBug``).
    var bugs = InjectedBugSet()
  #endif

  init(reserved: X86ReservedBits) { self.reserved = reserved }

  /// The level of the table in `frame`, or 0.
  func tableLevel(_ frame: UInt64) -> Int { frames[frame]?.level ?? 0 }

  /// `get_page_type(frame, L<level>)`: takes a type reference, validating the table the first
  /// time (every present entry, recursively). Fails if the frame has another type or a
  /// writable mapping, or an entry does not validate.
  mutating func acquireTable(_ frame: UInt64, level: Int, memory: HostMemory) -> Bool {
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
      let entry = memory.read(frame << 12 | index << 3)
      if !acquireEntry(entry, level: level, memory: memory) {
        for earlier in 0..<index {
          releaseEntry(memory.read(frame << 12 | earlier << 3), level: level, memory: memory)
        }
        frames[frame] = Frame(writableMappings: info.writableMappings)
        return false
      }
    }
    return true
  }

  /// `put_page_type`: drops a type reference; the last one (without a pin) devalidates the
  /// table, releasing what its entries hold.
  mutating func releaseTable(_ frame: UInt64, level: Int, memory: HostMemory) {
    guard var info = frames[frame], info.level == level, info.typeReferences > 0 else { return }
    info.typeReferences -= 1
    frames[frame] = info
    guard info.typeReferences == 0, !info.pinned else { return }
    frames[frame]?.level = 0
    for index in 0..<UInt64(512) {
      releaseEntry(memory.read(frame << 12 | index << 3), level: level, memory: memory)
    }
  }

  /// SEMANTICS §5.8 step 1c: validates a new entry of a level-`level` table and takes the
  /// references it needs. Not-present entries are always valid; reserved bits never are; an
  /// L1 entry mapping a frame writable needs a frame that is no table; a higher entry needs a
  /// frame that validates as the next lower table. Large pages are refused (PV superpages
  /// are not supported, as in Xen's default configuration).
  mutating func acquireEntry(_ entry: UInt64, level: Int, memory: HostMemory) -> Bool {
    guard entry & X86Entry.present != 0 else { return true }
    let leaf = X86Entry.isLeaf(entry, level: level)
    guard entry & reserved.mask(level: level, leaf: leaf) == 0 else { return false }
    let target = X86Entry.frame(entry)
    if level == 1 {
      guard entry & X86Entry.writable != 0 else { return true }
      var info = frames[target] ?? Frame()
      #if NESTCHECK_BUGS
        let validates = info.level == 0 || bugs.contains(.paravirtualWritableTableMapping)
      #else
        let validates = info.level == 0
      #endif
      guard validates else { return false }  // never a writable mapping of a table
      info.writableMappings += 1
      frames[target] = info
      return true
    }
    guard !leaf else { return false }
    return acquireTable(target, level: level - 1, memory: memory)
  }

  /// Releases what an entry of a level-`level` table holds.
  mutating func releaseEntry(_ entry: UInt64, level: Int, memory: HostMemory) {
    guard entry & X86Entry.present != 0 else { return }
    let target = X86Entry.frame(entry)
    if level == 1 {
      if entry & X86Entry.writable != 0, var info = frames[target], info.writableMappings > 0 {
        info.writableMappings -= 1
        frames[target] = info
      }
    } else if !X86Entry.isLeaf(entry, level: level) {
      releaseTable(target, level: level - 1, memory: memory)
    }
  }

  /// Pins or unpins a validated table (a root).
  mutating func setPinned(_ frame: UInt64, _ pinned: Bool) {
    frames[frame]?.pinned = pinned
  }
}
