import Machine

/// What the guest walk records about each level it reads, by level (1 = PTE … 5 = PML5E): for
/// the A/D update, the paging-structure-cache fills, and the shadow MMU, which builds its
/// shadow pages along the same path. The records live in ``WalkScratch`` memory, so a walk
/// neither zeroes nor copies them.
struct WalkPath {
  /// Eight words per record kind: entry guest-physical addresses, entry host addresses, entry
  /// values, rights.
  let words: UnsafeMutablePointer<UInt64>
  /// The level the walk started at (below the root when a paging-structure cache hit).
  var top = 0
  /// The guest rights of the levels above ``top`` (all rights when the walk began at the root).
  var inherited = Rights.guestAll
  /// The leaf's level (1 without guest paging).
  var leaf = 0
  /// The level whose page a TLB entry of the walk covers: the guest leaf's, or without guest
  /// paging the nested leaf's. A fault or INVLPG on any address of that page drops every
  /// 4-KiB piece of it (Intel SDM Vol. 3A §4.10.2.3: smaller-page entries of a larger page are
  /// invalidated as the one entry would be).
  var pageLevel = 0
  /// After a successful walk, what a TLB entry caches (SEMANTICS §6.1): ``Rights`` (guest U,
  /// W, X and the final translation's nested R, W, X), the leaf's protection key, G with
  /// CR4.PGE, whether a write needs no A/D update (guest and nested D set), and the final
  /// guest-physical address.
  var rights: UInt8 = 0
  var key: UInt8 = 0
  var global = false
  var dirty = false
  var guestPhysical: UInt64 = 0

  init(_ words: UnsafeMutablePointer<UInt64>) { self.words = words }

  /// The guest-physical address of the entry read at `level`.
  @inline(__always) func entryGuest(_ level: Int) -> UInt64 { words[level] }
  /// Its host physical address.
  @inline(__always) func entryHost(_ level: Int) -> UInt64 { words[8 &+ level] }
  /// The entry as read.
  @inline(__always) func entry(_ level: Int) -> UInt64 { words[16 &+ level] }
  /// The nested stage's rights for the entry's table page (``NestedStage/tableRights``).
  @inline(__always) func tableRights(_ level: Int) -> UInt16 {
    UInt16(truncatingIfNeeded: words[24 &+ level])
  }

  @inline(__always)
  func record(_ level: Int, guest: UInt64, host: UInt64, entry: UInt64, tableRights: UInt16) {
    words[level] = guest
    words[8 &+ level] = host
    words[16 &+ level] = entry
    words[24 &+ level] = UInt64(tableRights)
  }

  /// The guest rights (``Rights``) accumulated from the root down to and including `level`.
  func guestRights(_ level: Int, executeDisable: Bool) -> UInt8 {
    var rights = inherited
    for current in stride(from: top, through: level, by: -1) {
      rights &= Rights.of(entry(current), executeDisableEnabled: executeDisable)
    }
    return rights
  }
}

/// Scratch memory for walks, owned by an MMU: the guest path's records and the nested
/// stage's (entry addresses for its A/D update, tables for its cache fills).
final class WalkScratch {
  let words: UnsafeMutablePointer<UInt64>

  init() {
    words = .allocate(capacity: 64)
    words.initialize(repeating: 0, count: 64)
  }

  deinit { words.deallocate() }

  /// A fresh path record.
  var path: WalkPath { WalkPath(words) }
  /// The nested stage's 24 words.
  var stage: UnsafeMutablePointer<UInt64> { words + 32 }
}

/// WALK64 and WALK2D (SEMANTICS §1.7 and §4.1): the guest walk, over any ``NestedStage``.
/// With ``IdentityStage`` it is the native walk the hardware does over shadow or paravirtual
/// tables; with EPT or NPT it is the two-dimensional walk.
enum GuestWalk {
  /// Options that do not change during a walk.
  struct Settings {
    /// IMPL (SEMANTICS §4.1, §8): write guest A/D flags before translating the final GPA
    /// (`true`) or after it, as KVM's emulated walker does (`false`).
    var accessedDirtyFirst = false
    /// Combined paging-structure caches, or `nil`.
    var cache: PagingStructureCache.Handle?
    /// The tagging context of the caches.
    var cacheContext: UInt32 = 0
  }

  /// Translates `address` for `access`; counts every entry read (guest and nested) in
  /// `references`; on success leaves in `path` what a TLB entry caches. A/D flags are set only
  /// when the whole walk succeeds (IMPL: the KVM and Xen choice for upper levels on faulting
  /// walks, SEMANTICS §1.8).
  @inline(__always)
  static func run<Stage: NestedStage>(
    _ address: UInt64, _ access: Access, control: PagingControl, permissions: PermissionMap,
    stage: inout Stage, memory: MemoryView, settings: Settings, path: inout WalkPath,
    references: inout Int
  ) -> Outcome {
    guard control.paging else {  // SEMANTICS §4.1: with CR0.PG = 0 only step 7 runs
      // With paging off every linear address is a user-mode address (Intel SDM Vol. 3C,
      // exit qualification bit 9): with mode-based execute control a fetch needs XU.
      guard
        let hpa = stage.translate(
          address, .final, access, linear: address, guestUser: true, memory: memory,
          references: &references)
      else { return stage.fault }
      path.top = 0
      path.leaf = 1
      path.pageLevel = stage.leafLevel
      path.rights = Rights.guestAll | stage.finalRights(guestUser: true)
      path.key = 0
      path.global = false
      path.dirty = stage.dirty
      path.guestPhysical = address
      return .translated(hostPhysical: hpa)
    }
    guard control.isCanonical(address) else {
      #if NESTCHECK_BUGS
        if control.bugs.contains(.nonCanonicalAsPageFault) {
          return pageFault(control.errorCodeBase(access) | PageFaultCode.present, address)
        }
      #endif
      return .generalProtection
    }
    var level = control.levels  // step 2
    var tableGuest = control.root
    var tableHost: UInt64 = 0
    var tableKnown = false
    var tableRights: UInt16 = 0
    var inherited = Rights.guestAll
    if let cache = settings.cache {
      for cached in 2...control.levels {
        if let hit = cache.lookup(address, level: cached, context: settings.cacheContext) {
          level = cached - 1
          tableGuest = hit.guestTable
          tableHost = hit.table
          tableKnown = true
          tableRights = hit.tableRights
          inherited = UInt8(truncatingIfNeeded: hit.rights)
          break
        }
      }
    }
    path.top = level
    path.inherited = inherited
    let baseCode = control.errorCodeBase(access)  // step 3
    var entry: UInt64
    var all: UInt64 = ~0  // AND of the entries: R/W, U/S, A
    var any: UInt64 = 0  // OR of the entries: XD
    while true {  // step 4
      let offset = X86Entry.index(address, level: level) << 3
      let entryGuest = tableGuest | offset
      let entryHost: UInt64
      if tableKnown {
        entryHost = tableHost | offset
        tableKnown = false
      } else {
        guard
          let hpa = stage.translate(
            entryGuest, .tableRead, access, linear: address, guestUser: false, memory: memory,
            references: &references)
        else { return stage.fault }  // WALK2D 3b: nested fault first
        entryHost = hpa
        tableRights = stage.tableRights
      }
      entry = memory.load(entryHost)  // 4a: one memory reference
      references &+= 1
      guard entry & X86Entry.present != 0 else {  // 4b: P = 0, no reserved check
        return pageFault(baseCode, address)
      }
      let leaf = X86Entry.isLeaf(entry, level: level)  // 4c
      guard entry & control.reserved.mask(level: level, leaf: leaf) == 0 else {  // 4d
        return pageFault(baseCode | PageFaultCode.present | PageFaultCode.reserved, address)
      }
      all &= entry
      any |= entry
      // 4e
      path.record(level, guest: entryGuest, host: entryHost, entry: entry, tableRights: tableRights)
      if leaf { break }  // 4f
      tableGuest = entry & X86Entry.addressMask  // 4g
      level &-= 1
    }
    path.leaf = level
    path.pageLevel = level
    // Step 5: U = AND(U/S), W = AND(R/W), XD = OR(XD) over the path (SEMANTICS §1.5).
    let accumulated =
      inherited
      & Rights.of(
        all & ~X86Entry.executeDisable | any & X86Entry.executeDisable,
        executeDisableEnabled: control.executeDisable)
    #if NESTCHECK_BUGS
      let guestRights =
        control.bugs.contains(.xdNotInherited)  // X from the leaf alone
        ? accumulated & ~Rights.execute
          | Rights.of(entry, executeDisableEnabled: control.executeDisable) & Rights.execute
        : accumulated
    #else
      let guestRights = accumulated
    #endif
    // Step 6: rules 1–6 and the key check, after a complete valid walk.
    let userAddress = guestRights & Rights.user != 0
    let key = X86Entry.protectionKey(entry)
    let keyDenied =
      control.keysEnabled
      && ProtectionKeys.deny(access, key: key, userAddress: userAddress, control)
    if keyDenied || !permissions.permits(access, guestRights | Rights.nestedAll) {
      let keyBit = keyDenied ? PageFaultCode.protectionKey : 0
      #if NESTCHECK_BUGS
        if control.bugs.contains(.dirtySetOnFaultingWrite) && access.kind == .write {
          memory.storeExisting(
            path.entryHost(level), entry | X86Entry.accessed | X86Entry.dirty)
        }
        if control.bugs.contains(.finalTranslationBeforeGuestFault),
          stage.translate(
            X86Entry.translate(entry, level: level, address), .final, access, linear: address,
            guestUser: userAddress, memory: memory, references: &references) == nil
        {
          return stage.fault
        }
        if control.bugs.contains(.protectionKeyBitDropped)
          && !permissions.permits(access, guestRights | Rights.nestedAll)
        {
          return pageFault(baseCode | PageFaultCode.present, address)  // another rule denies
        }
      #endif
      return pageFault(baseCode | PageFaultCode.present | keyBit, address)
    }
    #if NESTCHECK_BUGS
      let finalGuest =
        control.bugs.contains(.largePageOffsetTruncated) && level > 1
        ? entry & X86Entry.addressMask & ~(X86Entry.pageBytes(level: level) - 1) | address & 0xFFF
        : X86Entry.translate(entry, level: level, address)
    #else
      let finalGuest = X86Entry.translate(entry, level: level, address)
    #endif
    let write = access.kind == .write
    let updates = all & X86Entry.accessed == 0 || (write && entry & X86Entry.dirty == 0)
    if updates && settings.accessedDirtyFirst {  // steps 5 and 7, in the configured order
      if let fault = updateAccessedDirty(path, write: write, address, &stage, memory, control) {
        return fault
      }
    }
    guard
      let hostPhysical = stage.translate(
        finalGuest, .final, access, linear: address, guestUser: userAddress, memory: memory,
        references: &references)
    else { return stage.fault }
    if updates && !settings.accessedDirtyFirst {
      if let fault = updateAccessedDirty(path, write: write, address, &stage, memory, control) {
        return fault
      }
    }
    path.rights = guestRights | stage.finalRights(guestUser: userAddress)  // step 8
    path.key = key
    path.global = control.globalPages && entry & X86Entry.global != 0
    path.dirty = (write || entry & X86Entry.dirty != 0) && stage.dirty
    path.guestPhysical = finalGuest
    return .translated(hostPhysical: hostPhysical)
  }

  @inline(__always)
  static func pageFault(_ code: UInt64, _ address: UInt64) -> Outcome {
    .pageFault(errorCode: code, linearAddress: address)
  }

  /// SEMANTICS §1.7 step 7 and §4.1 step 5: A in every entry of the path, D in the leaf for a
  /// write, top-down, writing only entries that lack them. Each write is a guest-table write
  /// through the nested stage; all are checked before any is made, so a nested fault leaves
  /// the guest tables untouched.
  @inline(never)
  static func updateAccessedDirty<Stage: NestedStage>(
    _ path: WalkPath, write: Bool, _ address: UInt64, _ stage: inout Stage, _ memory: MemoryView,
    _ control: PagingControl
  ) -> Outcome? {
    for level in stride(from: path.top, through: path.leaf, by: -1)
    where needsUpdate(path.entry(level), leaf: level == path.leaf, write: write) {
      if let fault = stage.tableWriteFault(
        path.entryGuest(level), tableRights: path.tableRights(level), linear: address)
      {
        return fault
      }
    }
    for level in stride(from: path.top, through: path.leaf, by: -1) {
      let old = memory.load(path.entryHost(level))
      #if NESTCHECK_BUGS
        let accessed = control.bugs.contains(.accessedNotSetOnSuccess) ? 0 : X86Entry.accessed
      #else
        let accessed = X86Entry.accessed
      #endif
      let new = old | accessed | (level == path.leaf && write ? X86Entry.dirty : 0)
      if new != old { memory.storeExisting(path.entryHost(level), new) }
    }
    return nil
  }

  @inline(__always)
  static func needsUpdate(_ entry: UInt64, leaf: Bool, write: Bool) -> Bool {
    entry & X86Entry.accessed == 0 || (leaf && write && entry & X86Entry.dirty == 0)
  }
}
