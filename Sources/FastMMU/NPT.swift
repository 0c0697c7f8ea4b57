import Machine

/// AMD nested paging as VMRUN set it up (SEMANTICS §3.1): N_CR3 and the host's paging mode.
/// Nested entries have the x86-64 format of ``X86Entry``, checked with the host's rules.
struct NPTConfiguration {
  /// N_CR3[M-1:12]: the nested root; also the tag of cached combined mappings.
  let root: UInt64
  /// 4 or 5 (host CR4.LA57).
  let levels: Int
  /// Host EFER.NXE: bit 63 of nested entries is XD, not reserved.
  let executeDisable: Bool
  /// Host reserved bits: AMD rules, host MAXPHYADDR, 1-GiB pages supported (every processor
  /// with nested paging has them).
  let reserved: X86ReservedBits

  /// Decodes a VMCB's nested-paging fields; `nil` for a legacy (non-PAE) host paging mode,
  /// which is outside scope.
  init?(_ npt: NestedPageTables) {
    guard npt.hostCR4 & ControlBit.cr4PhysicalAddressExtension != 0 else { return nil }
    levels = npt.hostCR4 & ControlBit.cr4FiveLevel != 0 ? 5 : 4
    executeDisable = npt.hostEFER & ControlBit.eferExecuteDisable != 0
    root = npt.nCR3 & X86ReservedBits.bits(UInt64(npt.physicalAddressBits) - 1, 12)
    reserved = X86ReservedBits(
      addressBits: npt.physicalAddressBits, executeDisable: executeDisable, gigabytePages: true,
      amd: true)
  }
}

/// EXITINFO1 of `#VMEXIT(NPF)` (SEMANTICS §3.3):
///
/// | bit   | 0 | 1  | 2  | 3   | 4  | 32                 | 33                    |
/// |-------|---|----|----|-----|----|--------------------|-----------------------|
/// | field | P | RW | US | RSV | ID | final GPA (GUEST_FINAL) | guest table (GUEST_PAGE) |
enum NPTExitInfo {
  static let finalTranslation: UInt64 = 1 << 32
  static let guestTable: UInt64 = 1 << 33
}

/// The nested walk of SEMANTICS §3.5 (NPT_TRANSLATE): a WALK64-like walk of the GPA from N_CR3
/// in the host's mode, every access user-mode, guest-table accesses performed as writes.
struct NPTStage: NestedStage {
  let configuration: NPTConfiguration
  let cache: PagingStructureCache.Handle?
  var cacheContext: UInt32
  let setsAccessedDirty: Bool
  /// IMPL (SEMANTICS §3.2, §8): whether guest-table reads, performed as writes, set the nested
  /// leaf's D flag.
  let dirtyOnTableReads: Bool
  /// 24 words of ``WalkScratch``, as for ``EPTStage``.
  let scratch: UnsafeMutablePointer<UInt64>

  #if NESTCHECK_BUGS
    /// The bugs of the MMU that walks it (``InjectedBug``).
    var bugs = InjectedBugSet()
  #endif

  private(set) var fault: Outcome = .generalProtection
  /// The last successful translation's accumulated ``Rights`` (U, W, X) and its leaf.
  private var accumulated: UInt8 = 0
  private var leaf: UInt64 = 0
  private(set) var leafLevel = 1

  init(
    configuration: NPTConfiguration, cache: PagingStructureCache.Handle?, cacheContext: UInt32,
    setsAccessedDirty: Bool, dirtyOnTableReads: Bool, scratch: UnsafeMutablePointer<UInt64>
  ) {
    self.configuration = configuration
    self.scratch = scratch
    self.cache = cache
    self.cacheContext = cacheContext
    self.setsAccessedDirty = setsAccessedDirty
    self.dirtyOnTableReads = dirtyOnTableReads
  }

  var tableRights: UInt16 { UInt16(accumulated) }

  var dirty: Bool { leaf & X86Entry.dirty != 0 }

  /// NPT reports R (a successful nested translation is readable), W, and X unless XD.
  func finalRights(guestUser: Bool) -> UInt8 {
    Rights.nestedRead | (accumulated & Rights.write) &<< 3 | (accumulated & Rights.execute) &<< 3
  }

  /// SEMANTICS §3.5 steps 1–4. Rights accumulate as ``Rights`` guest bits (U, W, X).
  @inline(never)
  mutating func translate(
    _ gpa: UInt64, _ purpose: NestedPurpose, _ access: Access, linear: UInt64, guestUser: Bool,
    memory: MemoryView, references: inout Int
  ) -> UInt64? {
    #if NESTCHECK_BUGS
      let tableAccess: AccessKind = bugs.contains(.nptTableReadsNotWrites) ? .read : .write
    #else
      let tableAccess = AccessKind.write
    #endif
    let need: AccessKind = purpose == .final ? access.kind : tableAccess  // step 1
    var level = configuration.levels
    var table = configuration.root
    var accumulated = Rights.guestAll
    if let cache {
      for cached in 2...configuration.levels {
        if let hit = cache.lookup(gpa, level: cached, context: cacheContext) {
          level = cached - 1
          table = hit.table
          accumulated = UInt8(truncatingIfNeeded: hit.rights)
          break
        }
      }
    }
    let startLevel = level
    let caching = cache != nil
    var entry: UInt64
    while true {  // step 2
      let address = table | X86Entry.index(gpa, level: level) << 3
      entry = memory.load(address)
      references &+= 1
      guard entry & X86Entry.present != 0 else {
        return nestedFault(gpa, purpose, need, present: false, reserved: false)
      }
      let leaf = X86Entry.isLeaf(entry, level: level)
      guard entry & configuration.reserved.mask(level: level, leaf: leaf) == 0 else {
        return nestedFault(gpa, purpose, need, present: true, reserved: true)
      }
      accumulated &= Rights.of(entry, executeDisableEnabled: configuration.executeDisable)
      scratch[level] = address
      if leaf { break }
      table = entry & X86Entry.addressMask
      if caching {
        scratch[8 &+ level] = table
        scratch[16 &+ level] = UInt64(accumulated)
      }
      level &-= 1
    }
    #if NESTCHECK_BUGS
      if bugs.contains(.nptAccessesNotUser) { accumulated |= Rights.user }
    #endif
    guard Self.permits(need, accumulated) else {
      return nestedFault(gpa, purpose, need, present: true, reserved: false)
    }
    if setsAccessedDirty {  // step 4
      let setsDirty = need == .write && (purpose == .final || dirtyOnTableReads)
      entry = setAccessedDirty(memory, from: startLevel, to: level, dirty: setsDirty)
    }
    if let cache, startLevel > level {
      for walked in (level + 1)...startLevel {
        cache.insert(
          gpa, level: walked, context: cacheContext, table: scratch[8 &+ walked],
          rights: UInt16(truncatingIfNeeded: scratch[16 &+ walked]))
      }
    }
    self.accumulated = accumulated
    leaf = entry
    leafLevel = level
    return X86Entry.translate(entry, level: level, gpa)
  }

  /// SEMANTICS §3.2: every nested access is user-mode (U/S = 1 on every level), writes need
  /// R/W = 1 on every level, fetches need XD = 0.
  @inline(__always)
  static func permits(_ need: AccessKind, _ rights: UInt8) -> Bool {
    guard rights & Rights.user != 0 else { return false }
    switch need {
    case .read: return true
    case .write: return rights & Rights.write != 0
    case .fetch: return rights & Rights.execute != 0
    }
  }

  private func setAccessedDirty(
    _ memory: MemoryView, from top: Int, to leafLevel: Int, dirty: Bool
  ) -> UInt64 {
    var leaf: UInt64 = 0
    for level in stride(from: top, through: leafLevel, by: -1) {
      let old = memory.load(scratch[level])
      var new = old | X86Entry.accessed
      if level == leafLevel && dirty { new |= X86Entry.dirty }
      if new != old { memory.storeExisting(scratch[level], new) }
      if level == leafLevel { leaf = new }
    }
    return leaf
  }

  /// SEMANTICS §3.5 step 3: the nested #PF's error code, with bit 32 or 33, as EXITINFO1.
  private mutating func nestedFault(
    _ gpa: UInt64, _ purpose: NestedPurpose, _ need: AccessKind, present: Bool, reserved: Bool
  ) -> UInt64? {
    fault = .nestedPageFault(
      exitInfo1: Self.exitInfo1(
        purpose: purpose, need: need, present: present, reserved: reserved,
        executeDisable: configuration.executeDisable),
      exitInfo2: gpa)
    #if NESTCHECK_BUGS
      if bugs.contains(.nptFinalBitAlwaysSet), case .nestedPageFault(let info1, let info2) = fault {
        fault = .nestedPageFault(exitInfo1: info1 | NPTExitInfo.finalTranslation, exitInfo2: info2)
      }
    #endif
    return nil
  }

  /// EXITINFO1 for a nested fault: P, RW (guest-table accesses are writes), US (always),
  /// RSV, ID (final fetches with host NXE), and the stage bit.
  static func exitInfo1(
    purpose: NestedPurpose, need: AccessKind, present: Bool, reserved: Bool,
    executeDisable: Bool
  ) -> UInt64 {
    var code = PageFaultCode.user
    if present { code |= PageFaultCode.present }
    if need == .write { code |= PageFaultCode.write }
    if reserved { code |= PageFaultCode.reserved }
    if need == .fetch && executeDisable { code |= PageFaultCode.fetch }
    return code | (purpose == .final ? NPTExitInfo.finalTranslation : NPTExitInfo.guestTable)
  }

  /// Guest-table accesses were already performed as writes, so the A/D write cannot fault.
  func tableWriteFault(_ gpa: UInt64, tableRights: UInt16, linear: UInt64) -> Outcome? {
    guard tableRights & UInt16(Rights.write) == 0 else { return nil }
    return .nestedPageFault(
      exitInfo1: Self.exitInfo1(
        purpose: .tableRead, need: .write, present: true, reserved: false,
        executeDisable: configuration.executeDisable),
      exitInfo2: gpa)
  }
}
