import Machine

/// Shadow entries (SPTEs): x86-64 entries (``X86Entry``) in tables the hardware walks with
/// guest-virtual addresses, their leaves holding host frames.
///
/// | kind     | bits set                                                                |
/// |----------|-------------------------------------------------------------------------|
/// | table    | P, R/W, U/S, A, next shadow table (SEMANTICS §5.2 step 9: full rights)  |
/// | leaf     | P, A, U/S if U, R/W and D if W, XD unless X, PKEY of the guest leaf     |
///
/// A and D are set from the start, so the hardware never writes a shadow entry.
enum ShadowEntry {
  /// An entry linking to the shadow table in host frame `frame`.
  static func table(_ frame: UInt64) -> UInt64 {
    frame << 12 | X86Entry.present | X86Entry.writable | X86Entry.user | X86Entry.accessed
  }

  /// A leaf mapping host frame `frame` with ``Rights`` U, W, X and protection key `key`.
  static func leaf(_ frame: UInt64, rights: UInt8, key: UInt8) -> UInt64 {
    var entry = frame << 12 | X86Entry.present | X86Entry.accessed | UInt64(key) << 59
    if rights & Rights.user != 0 { entry |= X86Entry.user }
    if rights & Rights.write != 0 { entry |= X86Entry.writable | X86Entry.dirty }
    if rights & Rights.execute == 0 { entry |= X86Entry.executeDisable }
    return entry
  }
}

/// SEMANTICS §5.2: the rights of the shadow leaf installed after a successful guest walk,
/// one step per function, in the order KVM's `FNAME(fetch)`/`make_spte` and Xen's
/// `_sh_propagate` apply them. `nil` means no shadow entry can express what the guest allows
/// for this access; the hypervisor then emulates it.
enum ShadowLeafRights {
  /// The inputs of the derivation.
  struct Request {
    /// Guest rights (U, W, X), the AND over every guest level, leaf included (step 1).
    var guest: UInt8
    /// The guest leaf's D flag after the walk (which sets it on a write).
    var guestDirty: Bool
    /// The faulting access.
    var access: Access
    /// The P2M's rights for the frame (``Rights`` nested bits).
    var host: UInt8
    /// The frame is a guest page table the hypervisor write-protects (step 5).
    var pageTable: Bool
    /// The guest's controls.
    var control: PagingControl
  }

  /// The leaf's rights (U, W, X), or `nil` if no leaf can grant the access as the guest does.
  static func derive(_ request: Request) -> UInt8? {
    guard request.host & Rights.nestedRead != 0 else { return nil }  // step 4: not readable
    var rights = request.guest
    rights = withoutDirtyTracking(rights, request)
    guard let kernel = kernelPageForWriteProtectOff(rights, request) else { return nil }
    rights = kernel
    rights = hostRestricted(rights, request)
    rights = pageTableProtected(rights, request)
    return rights
  }

  /// Step 2: a read or fetch of a clean page maps it read-only, so the first write faults and
  /// the hypervisor can set the guest's D flag (KVM `protect_clean_gpte`).
  static func withoutDirtyTracking(_ rights: UInt8, _ request: Request) -> UInt8 {
    #if NESTCHECK_BUGS
      if request.control.bugs.contains(.cleanPageMappedWritable) { return rights }
    #endif
    return request.guestDirty ? rights : rights & ~Rights.write
  }

  /// Step 6 (KVM, CR0.WP = 0): a supervisor write to a page the guest maps read-only succeeds,
  /// so the leaf becomes a writable kernel page (U = 0), not executable under SMEP; a later
  /// user access or fetch faults and remaps it. Under SMAP a user page cannot become a kernel
  /// page (supervisor reads without AC must still fault), nor under protection keys (the key
  /// register would change), so those writes are emulated (`nil`).
  static func kernelPageForWriteProtectOff(_ rights: UInt8, _ request: Request) -> UInt8? {
    let access = request.access
    let control = request.control
    guard !control.writeProtect, access.kind == .write, !access.user,
      rights & Rights.write == 0
    else { return rights }
    let userPage = rights & Rights.user != 0
    if (control.smap && userPage) || control.keysEnabled { return nil }
    var kernel = (rights | Rights.write) & ~Rights.user
    if control.smep { kernel &= ~Rights.execute }
    return kernel
  }

  /// Step 4: the host mapping's own restrictions (read-only or non-executable in the P2M).
  static func hostRestricted(_ rights: UInt8, _ request: Request) -> UInt8 {
    var result = rights
    if request.host & Rights.nestedWrite == 0 { result &= ~Rights.write }
    if request.host & Rights.nestedExecute == 0 { result &= ~Rights.execute }
    return result
  }

  /// Step 5: a frame that is a write-protected guest page table is never mapped writable
  /// (invariant I5).
  static func pageTableProtected(_ rights: UInt8, _ request: Request) -> UInt8 {
    #if NESTCHECK_BUGS
      if request.control.bugs.contains(.writableShadowAliasOfPageTable) { return rights }
    #endif
    return request.pageTable ? rights & ~Rights.write : rights
  }
}
