import Machine

/// Fault handling under shadow paging: SEMANTICS §5.3 (SHADOW_PF) and the fill of §5.2.
extension ShadowMMU {
  /// A hardware `#PF` on the shadow tables: a VM exit. The hypervisor walks the guest's tables
  /// itself (step 3); a guest fault is re-injected with the guest walk's error code (step 4),
  /// never the hardware's; otherwise the shadow is filled along the guest's path (step 5e) and
  /// the access re-executed, or emulated when no shadow entry can express it.
  func shadowFault(_ address: UInt64, _ access: Access) -> Outcome {
    var path = softwareScratch.path
    let outcome = guestWalk(address, access, &path)
    guard case .translated(let hostPhysical) = outcome else {
      if case .pageFault = outcome {
        exits.record(.guestPageFault)
        // The guest faulted on the address: from now on it may not see the old translation
        // (§6.1, §6.4), so the shadow leaf goes with the TLB entries, as on INVLPG.
        invalidatePage(address)
      } else {
        exits.record(.hypervisorPageFault)
      }
      return outcome
    }
    let gfn = path.guestPhysical >> 12
    let protectedTable = access.kind == .write && isWriteProtected(gfn)
    exits.record(protectedTable ? .writeProtectionTrap : .hypervisorPageFault)
    if protectedTable && configuration.shadowWritePolicy == .unsyncLevel1 && canUnsync(gfn) {
      unsync(gfn)
    }
    guard fill(address, access, path, hostPhysical: hostPhysical) else {
      return .translated(hostPhysical: hostPhysical)  // emulated
    }
    let retried = hardwareWalk(address, access)  // step 6: re-execute
    if case .translated = retried { return retried }
    return .translated(hostPhysical: hostPhysical)
  }

  /// The hypervisor's walk of the guest's tables (SEMANTICS §5.3 step 3): WALK2D over the P2M
  /// read in software, which sets the guest's A/D flags only when it succeeds and leaves the
  /// P2M's own flags alone.
  func guestWalk(_ address: UInt64, _ access: Access, _ path: inout WalkPath) -> Outcome {
    var references = 0
    let view = memory.view
    let settings = GuestWalk.Settings(
      accessedDirtyFirst: configuration.accessedDirtyBeforeFinalTranslation)
    let outcome: Outcome
    switch p2m {
    case .none:
      var stage = IdentityStage()
      outcome = GuestWalk.run(
        address, access, control: guest, permissions: guestPermissions, stage: &stage,
        memory: view, settings: settings, path: &path, references: &references)
    case .ept(let pointer, let format):
      var stage = EPTStage(
        pointer: pointer, format: format, cache: nil, cacheContext: 0, setsAccessedDirty: false,
        readBitOnAccessedDirtyWrite: configuration.eptReadBitOnAccessedDirtyWrite,
        scratch: softwareScratch.stage)
      outcome = GuestWalk.run(
        address, access, control: guest, permissions: guestPermissions, stage: &stage,
        memory: view, settings: settings, path: &path, references: &references)
    case .npt(let npt):
      var stage = NPTStage(
        configuration: npt, cache: nil, cacheContext: 0, setsAccessedDirty: false,
        dirtyOnTableReads: configuration.nptDirtyOnTableReads, scratch: softwareScratch.stage)
      outcome = GuestWalk.run(
        address, access, control: guest, permissions: guestPermissions, stage: &stage,
        memory: view, settings: settings, path: &path, references: &references)
    }
    counters.softwareWalks += 1
    counters.softwareReferences += references
    return outcome
  }

  /// SEMANTICS §5.3 step 5e and §5.2: builds or finds the shadow pages along the guest's path,
  /// keyed by (guest table frame, role), links each into its parent, and installs the leaf.
  /// Returns whether the installed leaf lets the hardware perform the access.
  func fill(_ address: UInt64, _ access: Access, _ path: WalkPath, hostPhysical: UInt64) -> Bool {
    var page = rootPage()
    var role = page.key.role
    let levels = Int(role.level)
    let finalFrame = path.guestPhysical >> 12
    // Guest tables above the leaf: one indirect shadow page per table.
    var level = levels
    if guest.paging {
      while level > path.leaf {
        let entry = path.entry(level)
        let rights = Rights.of(entry, executeDisableEnabled: guest.executeDisable)
        #if NESTCHECK_BUGS
          if guest.bugs.contains(.inheritedAccessFromParentOnly) { role.access = Rights.guestAll }
        #endif
        role = role.child(access: rights, direct: false)
        let child = shadowPage(X86Entry.frame(entry), role)
        link(page, X86Entry.index(address, level: level), to: child)
        page = pages[child]
        level -= 1
      }
    }
    // Below a guest large page (or with paging off): direct pages splinter it into 4 KiB.
    // Their role holds what the 4 KiB leaves copy from the large leaf: its rights, less W
    // while the leaf is clean (SEMANTICS §5.2 step 2), and its protection key. A page filled
    // while the leaf was dirty holds writable leaves, which must not serve once the guest
    // maps the range with a clean leaf again (KVM's direct_access in FNAME(fetch)); nor may
    // leaves with the old key once the guest changes it.
    if level > 1 {
      if guest.paging {
        let leaf = path.entry(level)
        role.access &= Rights.of(leaf, executeDisableEnabled: guest.executeDisable)
        if access.kind != .write && leaf & X86Entry.dirty == 0 { role.access &= ~Rights.write }
        role.protectionKey = X86Entry.protectionKey(leaf)
      }
      while level > 1 {
        let span = UInt64(9 * (level - 1))
        role = role.child(access: Rights.guestAll, direct: true)
        let child = shadowPage((finalFrame >> span) << span, role)
        link(page, X86Entry.index(address, level: level), to: child)
        page = pages[child]
        level -= 1
      }
    }
    return installLeaf(address, access, path, page: page, hostPhysical: hostPhysical)
  }

  /// Installs the leaf for `address` in level-1 shadow page `page` (SEMANTICS §5.2 steps 1–6).
  private func installLeaf(
    _ address: UInt64, _ access: Access, _ path: WalkPath, page: ShadowPage, hostPhysical: UInt64
  ) -> Bool {
    let gfn = path.guestPhysical >> 12
    let leafEntry = guest.paging ? path.entry(path.leaf) : 0
    let request = ShadowLeafRights.Request(
      guest: path.rights & Rights.guestAll,
      guestDirty: !guest.paging || access.kind == .write || leafEntry & X86Entry.dirty != 0,
      access: access, host: path.rights & Rights.nestedAll, pageTable: isWriteProtected(gfn),
      control: guest)
    let index = X86Entry.index(address, level: 1)
    let slot = page.frame << 12 | index << 3
    zap(slot, in: page)
    guard let rights = ShadowLeafRights.derive(request) else { return false }
    let key = guest.paging ? X86Entry.protectionKey(leafEntry) : 0
    shadowMemory.write(slot, ShadowEntry.leaf(hostPhysical >> 12, rights: rights, key: key))
    if let id = pages.page(inFrame: page.frame) { pages[id].guestFrames[Int(index)] = gfn }
    reverseMap.add(gfn, entry: slot)
    tlb.invalidate(address: address) { _ in true }
    let keyDenied =
      hardware.keysEnabled
      && ProtectionKeys.deny(
        access, key: key, userAddress: rights & Rights.user != 0, hardware)
    return !keyDenied && hardwarePermissions.permits(access, rights | Rights.nestedAll)
  }

  /// Links the entry `index` of `parent` to shadow page `child`, replacing whatever it held.
  private func link(_ parent: ShadowPage, _ index: UInt64, to child: Int) {
    let slot = parent.frame << 12 | index << 3
    let wanted = ShadowEntry.table(pages[child].frame)
    guard shadowMemory.read(slot) != wanted else { return }
    zap(slot, in: parent)
    // SEMANTICS §5.4: sync an unsync child before linking it, and every unsync page below it:
    // a page unlinked from above keeps its subtree, whose level-1 pages may have gone unsync
    // meanwhile (KVM requests a sync when it links a page with unsync children).
    #if NESTCHECK_BUGS
      if !guest.bugs.contains(.unsyncLinkedWithoutSync) { syncSubtree(child) }
    #else
      syncSubtree(child)
    #endif
    shadowMemory.write(slot, wanted)
    pages[child].parents.append(slot)
  }

  /// Syncs page `id` and every unsync page reachable below it. Roles carry the level, so the
  /// recursion goes down one level per step and ends.
  private func syncSubtree(_ id: Int) {
    syncIfUnsync(id)
    let page = pages[id]
    guard page.level > 1 else { return }
    for index in 0..<UInt64(512) {
      let entry = shadowMemory.read(page.frame << 12 | index << 3)
      guard entry & X86Entry.present != 0, entry & X86Entry.pageSize == 0,
        let child = pages.page(inFrame: X86Entry.frame(entry))
      else { continue }
      syncSubtree(child)
    }
  }

  /// The shadow page for (`gfn`, `role`), made if missing. A new indirect page write-protects
  /// its guest table through the reverse map, after syncing any unsync page of that table.
  func shadowPage(_ gfn: UInt64, _ role: ShadowRole) -> Int {
    let key = ShadowKey(guestFrame: gfn, role: role)
    if let id = pages.find(key) { return id }
    if !role.direct {
      for other in pages.shadowing(gfn) where pages[other].unsync { resync(other) }
    }
    let id = pages.add(key, frame: allocateShadowFrame())
    if !role.direct {
      if let backing = p2m.backing(gfn << 12, memory.view) { backingFrames[backing >> 12] = gfn }
      writeProtect(gfn)
    }
    return id
  }

  /// The current root's shadow page, made on first use.
  func rootPage() -> ShadowPage {
    if let root { return pages[root] }
    let levels = guest.paging ? guest.levels : 4
    let id = shadowPage(guest.paging ? guest.root >> 12 : 0, ShadowRole.root(guest, levels: levels))
    root = id
    return pages[id]
  }
}
