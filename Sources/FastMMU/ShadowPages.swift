/// The role of a shadow page (KVM's `union kvm_mmu_page_role`, SEMANTICS §5.1): everything
/// besides the guest table that decides what the page's entries hold. A shadow page is reused
/// only for a walk whose role matches exactly; this is what keeps the CR0.WP, SMEP, SMAP,
/// protection-key and NX variants of one guest table apart (invariant I6 of SEMANTICS §5.5).
struct ShadowRole: Hashable {
  /// The shadow level, 1 (PT) to 5 (PML5).
  var level: UInt8
  /// The guest rights (``Rights`` U, W, X) the path above grants: the AND over every guest
  /// entry from the root down to this table (using only the parent's was KVM bug b1bd5cba).
  var access: UInt8
  /// A page that maps a linear range directly rather than shadowing a guest table: the pieces
  /// of a guest large page, or the identity map of a guest with paging off.
  var direct: Bool
  /// The guest paging was off (CR0.PG = 0) when the page was made.
  var pagingOff: Bool
  /// Guest CR0.WP.
  var writeProtect: Bool
  /// Guest CR4.SMEP with CR0.WP = 0 (KVM `smep_andnot_wp`).
  var smepAndNotWriteProtect: Bool
  /// Guest CR4.SMAP with CR0.WP = 0 (KVM `smap_andnot_wp`).
  var smapAndNotWriteProtect: Bool
  /// Guest protection keys (CR4.PKE or PKS) with CR0.WP = 0: a kernel page made while keys
  /// were off (``ShadowLeafRights/kernelPageForWriteProtectOff(_:_:)``) hides a user page from
  /// the key check, so it must not serve once they are on (KVM offers no keys under shadow
  /// paging, so has no such bit).
  var keysAndNotWriteProtect: Bool
  /// Guest EFER.NXE (KVM `efer_nx`): whether bit 63 of guest entries is XD or reserved.
  var executeDisable: Bool
  /// For the direct pages splintering a guest large page: the large leaf's protection key,
  /// which every 4 KiB leaf below copies; 0 otherwise. A guest that changes only the key of a
  /// large leaf must not be served the old key's leaves (KVM offers no keys under shadow
  /// paging, so has no such bit).
  var protectionKey: UInt8 = 0

  /// The role of a root for the guest controls.
  static func root(_ control: PagingControl, levels: Int) -> ShadowRole {
    #if NESTCHECK_BUGS
      let writeProtect =
        control.writeProtect && !control.bugs.contains(.shadowRoleIgnoresWriteProtect)
    #else
      let writeProtect = control.writeProtect
    #endif
    return ShadowRole(
      level: UInt8(levels), access: Rights.guestAll, direct: !control.paging,
      pagingOff: !control.paging, writeProtect: writeProtect,
      smepAndNotWriteProtect: control.smep && !control.writeProtect,
      smapAndNotWriteProtect: control.smap && !control.writeProtect,
      keysAndNotWriteProtect: control.keysEnabled && !control.writeProtect,
      executeDisable: control.executeDisable)
  }

  /// The role of a child one level down, reached through an entry granting `rights`.
  func child(access rights: UInt8, direct: Bool) -> ShadowRole {
    var role = self
    role.level -= 1
    role.access &= rights
    role.direct = direct
    return role
  }
}

/// A shadow page's identity: the guest table it shadows (or, for a direct page, the first
/// guest frame it maps) and its role.
struct ShadowKey: Hashable {
  var guestFrame: UInt64
  var role: ShadowRole
}

/// One shadow page (KVM's `struct kvm_mmu_page`): a 4-KiB table in the hypervisor's memory
/// that the hardware walks.
struct ShadowPage {
  let key: ShadowKey
  /// The host frame holding the table.
  let frame: UInt64
  /// Out of sync with its guest table (level-1 pages only; SEMANTICS §5.1 `U`).
  var unsync = false
  /// The host addresses of the shadow entries that link to this page.
  var parents: [UInt64] = []
  /// For level-1 pages: the guest frame each entry maps (KVM's `sp->gfns`), for the reverse
  /// map.
  var guestFrames: [UInt64]

  var level: Int { Int(key.role.level) }
  /// Whether the page shadows a guest table (and so write-protects it).
  var isIndirect: Bool { !key.role.direct }
}

/// The hypervisor's shadow pages: looked up by (guest frame, role), and by the host frame
/// that holds them, with the guest tables each shadows (KVM's `mmu_page_hash`).
struct ShadowPageTable {
  private(set) var pages: [ShadowPage?] = []
  private var freeIDs: [Int] = []
  private var byKey: [ShadowKey: Int] = [:]
  private var byFrame: [UInt64: Int] = [:]
  /// The indirect pages shadowing each guest table frame.
  private(set) var byGuestFrame: [UInt64: [Int]] = [:]

  /// The page with `id`.
  subscript(id: Int) -> ShadowPage {
    get {
      guard let page = pages[id] else { preconditionFailure("no shadow page \(id)") }
      return page
    }
    set { pages[id] = newValue }
  }

  /// The page with `key`, if it exists.
  func find(_ key: ShadowKey) -> Int? { byKey[key] }

  /// The page held in host frame `frame`, if any.
  func page(inFrame frame: UInt64) -> Int? { byFrame[frame] }

  /// The indirect pages that shadow guest frame `gfn`.
  func shadowing(_ gfn: UInt64) -> [Int] { byGuestFrame[gfn] ?? [] }

  /// The number of live pages.
  var count: Int { byKey.count }

  /// Registers a new page held in `frame`; returns its id.
  mutating func add(_ key: ShadowKey, frame: UInt64) -> Int {
    let page = ShadowPage(
      key: key, frame: frame,
      guestFrames: key.role.level == 1 ? Array(repeating: 0, count: 512) : [])
    let id: Int
    if let free = freeIDs.popLast() {
      id = free
      pages[id] = page
    } else {
      id = pages.count
      pages.append(page)
    }
    byKey[key] = id
    byFrame[frame] = id
    if !key.role.direct { byGuestFrame[key.guestFrame, default: []].append(id) }
    return id
  }

  /// Forgets every page.
  mutating func removeAll() {
    self = ShadowPageTable()
  }
}
