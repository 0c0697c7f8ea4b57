import Machine

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// One TLB entry: a cached translation of a 4-KiB linear page (SEMANTICS §6.1). A large page is
/// cached one 4-KiB piece at a time, as QEMU's softmmu TLB does; its level says how far an
/// invalidation of any address in it must reach.
///
/// | field     | bits  | meaning                                                         |
/// |-----------|-------|-----------------------------------------------------------------|
/// | `tag`     | 51:0  | linear address >> 12                                            |
/// |           | 63:52 | the context's name (``TaggingContexts``); all ones when empty   |
/// | `frame`   | 63:0  | host physical address of the 4-KiB piece                        |
/// | `context` | 31:0  | the context's name again, for invalidations by tag              |
/// | `info`    | 5:0   | ``Rights``: guest U, W, X; nested R, W, X                       |
/// |           | 6     | dirty: a write needs no A/D update                              |
/// |           | 7     | global (G with CR4.PGE): survives flushes of non-global entries |
/// |           | 11:8  | protection key                                                  |
/// |           | 15:12 | page level (1, 2, 3): the guest leaf's, or the nested leaf's    |
///
/// A global entry is tagged with the context that filled it, like any other: a context that
/// did not fill it walks again and caches its own copy, which the architecture allows (any
/// entry may be missing), and a hit costs one comparison.
@usableFromInline
struct TLBEntry: Sendable {
  @usableFromInline var tag: UInt64
  @usableFromInline var frame: UInt64
  @usableFromInline var context: UInt32
  @usableFromInline var info: UInt32

  @usableFromInline static let dirty: UInt32 = 1 << 6
  static let global: UInt32 = 1 << 7
  static let empty = TLBEntry(tag: .max, frame: 0, context: 0, info: 0)

  var isEmpty: Bool { tag == .max }
  /// The linear page number.
  var page: UInt64 { tag & 0x000F_FFFF_FFFF_FFFF }
  var level: Int { Int(info >> 12 & 0xF) }
  var key: UInt8 { UInt8(truncatingIfNeeded: info >> 8 & 0xF) }
  var isGlobal: Bool { info & Self.global != 0 }
}

/// What a TLB hit is checked against, kept behind one pointer so the inlined hit path reads no
/// class property.
@usableFromInline
struct TLBControl {
  @usableFromInline var entries: UnsafeMutablePointer<TLBEntry>
  @usableFromInline var mask: UInt64
  /// The current context's name, shifted into bits 63:52 of a tag.
  @usableFromInline var contextKey: UInt64 = 0
  /// CR4.PKE or CR4.PKS: hits must pass the key check too.
  @usableFromInline var keysEnabled = false
  /// For each access class, which ``Rights`` permit it (``PermissionMap``).
  @usableFromInline var allow: UnsafeMutablePointer<UInt64>
  /// The controls the key check reads.
  var keyControl: PagingControl?
  #if NESTCHECK_BUGS
    /// ``InjectedBug/writeThroughCleanEntry``.
    @usableFromInline var writesIgnoreDirty = false
  #endif
}

/// A direct-mapped TLB of translations (combined GVA→HPA entries under nested paging, linear
/// ones otherwise), indexed by the low bits of the page number and tagged per
/// ``TaggingContexts``. A hit is used only if it permits the access; a hit that denies it, or a
/// write through an entry whose dirty flag is clear, re-walks (IMPL choices of SEMANTICS §8:
/// "re-walk" rather than a spurious fault, and "re-walk" to set D).
///
/// Two ``SlotSet``s say which slots hold an entry and which hold a piece of a large page, so an
/// invalidation visits only the entries that exist (one address: its own slot and the large
/// pieces; a context: every entry), never the empty rest of the array. A hit reads neither.
@usableFromInline
final class TranslationBuffer {
  @usableFromInline let control: UnsafeMutablePointer<TLBControl>
  let entries: UnsafeMutablePointer<TLBEntry>
  let allow: UnsafeMutablePointer<UInt64>
  /// The number of entries.
  let capacity: Int
  private let mask: UInt64
  /// The slots that hold an entry.
  let occupied: SlotSet
  /// The slots that hold a piece of a large page (level 2 or 3), a subset of ``occupied``:
  /// the entries an invalidation of one address must look at beyond the address's own slot.
  let largePieces: SlotSet

  /// A TLB of `capacity` entries (rounded up to a power of two).
  init(capacity: Int) {
    var count = 1
    while count < capacity { count <<= 1 }
    self.capacity = count
    mask = UInt64(count - 1)
    entries = .allocate(capacity: count)
    entries.initialize(repeating: .empty, count: count)
    occupied = .allocate(slots: count)
    largePieces = .allocate(slots: count)
    allow = .allocate(capacity: AccessClass.count)
    allow.initialize(repeating: 0, count: AccessClass.count)
    control = .allocate(capacity: 1)
    control.initialize(to: TLBControl(entries: entries, mask: mask, allow: allow))
  }

  deinit {
    entries.deinitialize(count: capacity)
    entries.deallocate()
    occupied.deallocate()
    largePieces.deallocate()
    allow.deallocate()
    control.deinitialize(count: 1)
    control.deallocate()
  }

  /// Loads the permission map and key controls of the current guest controls.
  func configure(_ paging: PagingControl, _ permissions: PermissionMap) {
    for index in 0..<AccessClass.count { allow[index] = permissions.allow[index] }
    control.pointee.keysEnabled = paging.keysEnabled
    control.pointee.keyControl = paging
  }

  /// Switches the current context.
  func setContext(_ context: UInt32) {
    control.pointee.contextKey = UInt64(context) << 52
  }

  /// SEMANTICS §6.1 TLB_ACCESS steps 1, 3–5: the host physical address if a matching entry
  /// permits the access, else `nil` (miss, or a re-walk).
  @inlinable @inline(__always)
  func lookup(_ address: UInt64, _ access: Access) -> UInt64? {
    Self.lookup(control, address, access)
  }

  /// The lookup over a TLB's control block, for MMUs that keep the pointer themselves.
  @inlinable @inline(__always)
  static func lookup(
    _ state: UnsafeMutablePointer<TLBControl>, _ address: UInt64, _ access: Access
  ) -> UInt64? {
    let page = address &>> 12
    let entry = state.pointee.entries[Int(truncatingIfNeeded: page & state.pointee.mask)]
    guard entry.tag == page | state.pointee.contextKey else { return nil }
    let permitted = state.pointee.allow[AccessClass.of(access)] &>> UInt64(entry.info & 63) & 1
    guard permitted != 0 else { return nil }
    if access.kind == .write && entry.info & TLBEntry.dirty == 0 {
      #if NESTCHECK_BUGS
        if !state.pointee.writesIgnoreDirty { return nil }
      #else
        return nil
      #endif
    }
    if state.pointee.keysEnabled && keyDenies(state, entry, access) { return nil }
    return entry.frame | (address & 0xFFF)
  }

  @usableFromInline
  static func keyDenies(
    _ state: UnsafeMutablePointer<TLBControl>, _ entry: TLBEntry, _ access: Access
  ) -> Bool {
    guard let paging = state.pointee.keyControl else { return false }
    return ProtectionKeys.deny(
      access, key: entry.key, userAddress: entry.info & UInt32(Rights.user) != 0, paging)
  }

  /// Caches a successful walk (every A flag on its path is set by now; SEMANTICS §6.1 "fill").
  func insert(_ address: UInt64, hostPhysical: UInt64, _ path: WalkPath, context: UInt32) {
    var info = UInt32(path.rights & 63) | UInt32(path.key) << 8 | UInt32(path.pageLevel) << 12
    if path.dirty { info |= TLBEntry.dirty }
    if path.global { info |= TLBEntry.global }
    let page = address >> 12
    let slot = Int(truncatingIfNeeded: page & mask)
    entries[slot] = TLBEntry(
      tag: page | UInt64(context) << 52, frame: hostPhysical & ~0xFFF, context: context,
      info: info)
    occupied.insert(slot)
    if path.pageLevel > 1 { largePieces.insert(slot) } else { largePieces.remove(slot) }
  }

  /// Empties `slot`.
  @inline(__always)
  private func drop(_ slot: Int) {
    entries[slot] = .empty
    occupied.remove(slot)
    largePieces.remove(slot)
  }

  /// Drops the entries that translate `address` (any page size) and satisfy `matches`: the
  /// address's own slot, then the large-page pieces.
  @inline(__always)
  func invalidate(address: UInt64, where matches: (TLBEntry) -> Bool) {
    let page = address >> 12
    let slot = Int(truncatingIfNeeded: page & mask)
    if !entries[slot].isEmpty && entries[slot].page == page && matches(entries[slot]) {
      drop(slot)
    }
    guard !largePieces.isEmpty else { return }
    largePieces.forEach { index in
      let entry = entries[index]
      let shift = UInt64(truncatingIfNeeded: 9 &* (entry.level &- 1))
      if entry.page >> shift == page >> shift && matches(entry) { drop(index) }
    }
  }

  /// Drops every entry that satisfies `matches`.
  @inline(__always)
  func invalidateAll(where matches: (TLBEntry) -> Bool) {
    occupied.forEach { index in
      if matches(entries[index]) { drop(index) }
    }
  }

  /// Drops everything.
  func flush() {
    occupied.forEach { entries[$0] = .empty }
    occupied.removeAll()
    largePieces.removeAll()
  }

  /// Drops everything and forgets the controls: the TLB as a new one is.
  func reset() {
    flush()
    allow.update(repeating: 0, count: AccessClass.count)
    control.pointee.contextKey = 0
    control.pointee.keysEnabled = false
    control.pointee.keyControl = nil
    #if NESTCHECK_BUGS
      control.pointee.writesIgnoreDirty = false
    #endif
  }

  /// The number of entries held.
  var count: Int { occupied.count }
}
