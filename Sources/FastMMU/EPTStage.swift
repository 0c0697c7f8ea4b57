import Machine

/// The EPT walk: SEMANTICS §2.7 (EPT_TRANSLATE) over the live EPT tables, optionally through
/// the guest-physical paging-structure caches.
struct EPTStage: NestedStage {
  let pointer: EPTPointer
  let format: EPTFormat
  /// Guest-physical paging-structure caches, or `nil` when off.
  let cache: PagingStructureCache.Handle?
  /// The context (EP4TA) the caches are tagged with.
  var cacheContext: UInt32
  /// Whether translations set the EPT A/D flags (`false` for a hypervisor reading its P2M in
  /// software, which is not a hardware walk).
  let setsAccessedDirty: Bool
  /// IMPL (SEMANTICS §8): qualification bit 0 on a violation by a guest A/D write.
  let readBitOnAccessedDirtyWrite: Bool
  /// 24 words of ``WalkScratch``: entry addresses (A/D), tables and rights by level (fills).
  let scratch: UnsafeMutablePointer<UInt64>

  #if NESTCHECK_BUGS
    /// The bugs of the MMU that walks it (``InjectedBug``).
    var bugs = InjectedBugSet()
  #endif

  private(set) var fault: Outcome = .generalProtection
  /// The last successful translation's AND of R, W, X and XU, and its leaf.
  private var effective: UInt64 = 0
  private var leaf: UInt64 = 0
  private(set) var leafLevel = 1

  init(
    pointer: EPTPointer, format: EPTFormat, cache: PagingStructureCache.Handle?,
    cacheContext: UInt32, setsAccessedDirty: Bool, readBitOnAccessedDirtyWrite: Bool,
    scratch: UnsafeMutablePointer<UInt64>
  ) {
    self.pointer = pointer
    self.format = format
    self.cache = cache
    self.cacheContext = cacheContext
    self.setsAccessedDirty = setsAccessedDirty
    self.readBitOnAccessedDirtyWrite = readBitOnAccessedDirtyWrite
    self.scratch = scratch
  }

  var tableRights: UInt16 { UInt16(truncatingIfNeeded: effective) }

  var dirty: Bool { !pointer.accessedDirty || leaf & EPTFormat.dirty != 0 }

  func finalRights(guestUser: Bool) -> UInt8 {
    UInt8(truncatingIfNeeded: effective & 3) &<< 3
      | UInt8(truncatingIfNeeded: executeBit(effective, guestUser)) &<< 5
  }

  /// SEMANTICS §2.7 steps 1–6. Walks with caches or A/D flags take ``translateRecording``;
  /// the plain walk visits the levels one by one, each visit specialised for its level.
  @inline(never)
  mutating func translate(
    _ gpa: UInt64, _ purpose: NestedPurpose, _ access: Access, linear: UInt64, guestUser: Bool,
    memory: MemoryView, references: inout Int
  ) -> UInt64? {
    if cache != nil || (pointer.accessedDirty && setsAccessedDirty) {
      return translateRecording(
        gpa, purpose, access, linear: linear, guestUser: guestUser, memory: memory,
        references: &references)
    }
    var walk = PlainWalk(table: pointer.root)  // step 1
    _ =
      (pointer.levels < 5 || visit(5, gpa, &walk, memory)) && visit(4, gpa, &walk, memory)
      && visit(3, gpa, &walk, memory) && visit(2, gpa, &walk, memory)
      && visit(1, gpa, &walk, memory)
    references &+= walk.count
    guard walk.usable else {
      return unusable(walk.entry, gpa, purpose, access, effective: walk.effective, linear: linear)
    }
    return permit(
      walk.entry, walk.level, gpa, purpose, access, walk.effective, linear, guestUser)
  }

  /// The state of a plain walk between visits.
  private struct PlainWalk {
    var table: UInt64
    var effective = EPTFormat.permissionBits
    var entry: UInt64 = 0
    var level = 0
    var count = 0
    var usable = true
  }

  /// Step 2 for the entry at `level`: reads it (2a), ANDs its rights (2b), checks it (2c, 2d)
  /// and descends (2e). Returns whether the walk goes on below.
  @inline(__always)
  private func visit(_ level: Int, _ gpa: UInt64, _ walk: inout PlainWalk, _ memory: MemoryView)
    -> Bool
  {
    let entry = memory.load(walk.table | X86Entry.index(gpa, level: level) &<< 3)
    walk.count &+= 1
    walk.effective &= entry
    walk.entry = entry
    walk.level = level
    let leaf = X86Entry.isLeaf(entry, level: level)
    guard format.isUsable(entry, level: level, leaf: leaf) else {
      walk.usable = false
      return false
    }
    walk.table = entry & X86Entry.addressMask
    return !leaf
  }

  /// The same walk, recording each entry for the A/D update and the cache fills, and starting
  /// below the root when a cache hits.
  @inline(never)
  private mutating func translateRecording(
    _ gpa: UInt64, _ purpose: NestedPurpose, _ access: Access, linear: UInt64, guestUser: Bool,
    memory: MemoryView, references: inout Int
  ) -> UInt64? {
    var level = pointer.levels
    var table = pointer.root
    var effective = EPTFormat.permissionBits
    if let cache, let hit = resume(cache, gpa) {
      level = hit.level
      table = hit.table
      effective = hit.effective
    }
    let startLevel = level
    var entry: UInt64
    while true {
      let address = table | X86Entry.index(gpa, level: level) &<< 3
      entry = memory.load(address)
      references &+= 1
      effective &= entry
      let leaf = X86Entry.isLeaf(entry, level: level)
      guard format.isUsable(entry, level: level, leaf: leaf) else {
        return unusable(entry, gpa, purpose, access, effective: effective, linear: linear)
      }
      record(level, address: address, entry: entry, effective: effective)
      if leaf { break }
      table = entry & X86Entry.addressMask
      level &-= 1
    }
    guard permits(purpose, access, effective, guestUser) else {
      return violation(gpa, purpose, access, effective: effective, linear: linear)
    }
    entry = finish(gpa, from: startLevel, to: level, write: need(purpose, access) == .write, memory)
    return permit(entry, level, gpa, purpose, access, effective, linear, guestUser)
  }

  /// Step 3: the kind of access the translation performs.
  @inline(__always)
  private func need(_ purpose: NestedPurpose, _ access: Access) -> AccessKind {
    #if NESTCHECK_BUGS
      if purpose != .final && bugs.contains(.eptTableReadsNotWrites) { return .read }
    #endif
    return purpose == .final ? access.kind : (pointer.accessedDirty ? .write : .read)
  }

  /// The execute right that applies: XS, or XU for a user-mode linear address with
  /// mode-based execute control.
  @inline(__always)
  private func executeBit(_ effective: UInt64, _ guestUser: Bool) -> UInt64 {
    format.modeBasedExecute && guestUser ? effective &>> 10 & 1 : effective &>> 2 & 1
  }

  /// Step 4: V2–V4.
  @inline(__always)
  private func permits(
    _ purpose: NestedPurpose, _ access: Access, _ effective: UInt64, _ guestUser: Bool
  ) -> Bool {
    switch need(purpose, access) {
    case .read: effective & 1 != 0
    case .write: effective & 2 != 0
    case .fetch: executeBit(effective, guestUser) != 0
    }
  }

  /// Steps 4 and 6: the permission check, then the host address of the leaf.
  @inline(__always)
  private mutating func permit(
    _ leaf: UInt64, _ level: Int, _ gpa: UInt64, _ purpose: NestedPurpose, _ access: Access,
    _ effective: UInt64, _ linear: UInt64, _ guestUser: Bool
  ) -> UInt64? {
    guard permits(purpose, access, effective, guestUser) else {
      return violation(gpa, purpose, access, effective: effective, linear: linear)
    }
    self.effective = effective
    self.leaf = leaf
    leafLevel = level
    return X86Entry.translate(leaf, level: level, gpa)
  }

  /// The deepest cached level for `gpa`: where the walk resumes.
  private func resume(_ cache: PagingStructureCache.Handle, _ gpa: UInt64) -> (
    level: Int, table: UInt64, effective: UInt64
  )? {
    for level in 2...pointer.levels {
      if let hit = cache.lookup(gpa, level: level, context: cacheContext) {
        return (level - 1, hit.table, UInt64(hit.rights))
      }
    }
    return nil
  }

  /// Records an entry of the walk in the scratch words: its address (for step 5) and, below
  /// it, the next table and the rights so far (for the cache fill).
  @inline(__always)
  private func record(_ level: Int, address: UInt64, entry: UInt64, effective: UInt64) {
    scratch[level] = address
    scratch[8 &+ level] = entry & X86Entry.addressMask
    scratch[16 &+ level] = effective
  }

  /// After a successful walk: the A/D update (step 5) and the cache fill. Returns the leaf as
  /// it is now.
  @inline(never)
  private func finish(
    _ gpa: UInt64, from startLevel: Int, to leafLevel: Int, write: Bool, _ memory: MemoryView
  ) -> UInt64 {
    var leaf = memory.load(scratch[leafLevel])
    if pointer.accessedDirty && setsAccessedDirty {
      leaf = setAccessedDirty(memory, from: startLevel, to: leafLevel, write: write)
    }
    if let cache, startLevel > leafLevel {
      for level in (leafLevel + 1)...startLevel {
        cache.insert(
          gpa, level: level, context: cacheContext, table: scratch[8 + level],
          rights: UInt16(truncatingIfNeeded: scratch[16 + level]))
      }
    }
    return leaf
  }

  /// Step 5: A in every entry of the path, D in the leaf for a write; an entry whose flags are
  /// already set is not written. Returns the leaf as it is now.
  private func setAccessedDirty(_ memory: MemoryView, from top: Int, to leafLevel: Int, write: Bool)
    -> UInt64
  {
    var leaf: UInt64 = 0
    for level in stride(from: top, through: leafLevel, by: -1) {
      let old = memory.load(scratch[level])
      var new = old | EPTFormat.accessed
      if level == leafLevel && write { new |= EPTFormat.dirty }
      if new != old { memory.storeExisting(scratch[level], new) }
      if level == leafLevel { leaf = new }
    }
    return leaf
  }

  /// Steps 2c and 2d when the entry is not usable: V1 if not present, else M1–M4.
  @inline(never)
  private mutating func unusable(
    _ entry: UInt64, _ gpa: UInt64, _ purpose: NestedPurpose, _ access: Access,
    effective: UInt64, linear: UInt64
  ) -> UInt64? {
    guard format.isPresent(entry) else {
      return violation(gpa, purpose, access, effective: effective, linear: linear)
    }
    #if NESTCHECK_BUGS
      if bugs.contains(.eptMisconfigurationAsViolation) {
        return violation(gpa, purpose, access, effective: effective, linear: linear)
      }
    #endif
    fault = .eptMisconfiguration(guestPhysical: gpa)
    return nil
  }

  @inline(never)
  private mutating func violation(
    _ gpa: UInt64, _ purpose: NestedPurpose, _ access: Access, effective: UInt64, linear: UInt64
  ) -> UInt64? {
    let cause: EPTQualification.Cause =
      purpose == .final
      ? .final(access.kind) : .tableRead(accessedDirty: pointer.accessedDirty)
    let q = EPTQualification.make(
      cause, effective: effective, modeBasedExecute: format.modeBasedExecute)
    fault = .eptViolation(qualification: q, guestPhysical: gpa, guestLinear: linear)
    #if NESTCHECK_BUGS
      if bugs.contains(.eptQualificationBitsReordered) {  // KVM's ACC_* order: X, W, U(=R)
        let reordered =
          q & ~0x38 | (effective & 4) << 1 | (effective & 2) << 3 | (effective & 1) << 5
        fault = .eptViolation(qualification: reordered, guestPhysical: gpa, guestLinear: linear)
      }
    #endif
    return nil
  }

  /// SEMANTICS §4.1 step 5 with EPT A/D flags off: the guest A/D write needs W, which the
  /// read did not; a violation reports the entry's GPA, bit 1, and bit 8 = 0.
  func tableWriteFault(_ gpa: UInt64, tableRights: UInt16, linear: UInt64) -> Outcome? {
    guard tableRights & UInt16(EPTFormat.write) == 0 else { return nil }
    let q = EPTQualification.make(
      .tableWrite(alsoRead: readBitOnAccessedDirtyWrite), effective: UInt64(tableRights),
      modeBasedExecute: format.modeBasedExecute)
    return .eptViolation(qualification: q, guestPhysical: gpa, guestLinear: linear)
  }
}
