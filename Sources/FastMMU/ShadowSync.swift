import Machine

/// Keeping shadow pages in step with the guest's tables (SEMANTICS §5.3 step 5c, §5.4, §5.5
/// I5 and I8): write protection through the reverse map, emulated writes, unsync and resync,
/// and the guest's TLB-flush events that resynchronise.
extension ShadowMMU {
  /// Whether guest frame `gfn` is a page table the hypervisor write-protects: some synced
  /// indirect shadow page shadows it (SEMANTICS §5.1 `WP`).
  func isWriteProtected(_ gfn: UInt64) -> Bool {
    pages.shadowing(gfn).contains { !pages[$0].unsync }
  }

  /// Whether `gfn` may leave write protection: only level-1 tables may go out of sync; upper
  /// levels stay write-tracked (SEMANTICS §5.5 I5, KVM `account_shadowed`).
  func canUnsync(_ gfn: UInt64) -> Bool {
    let shadowing = pages.shadowing(gfn)
    return !shadowing.isEmpty && shadowing.allSatisfy { pages[$0].level == 1 }
  }

  /// Marks every shadow page of `gfn` unsync: guest writes to the table no longer trap, and
  /// its shadow entries may lag until the guest flushes (SEMANTICS §5.5 I8).
  func unsync(_ gfn: UInt64) {
    for id in pages.shadowing(gfn) { pages[id].unsync = true }
  }

  /// Removes write access to `gfn` from every shadow leaf that maps it (reverse map), then
  /// flushes the TLB so the protection holds at once (SEMANTICS §5.9, KVM f81602958c11).
  func writeProtect(_ gfn: UInt64) {
    var changed = false
    for slot in reverseMap.entries(gfn) {
      let entry = shadowMemory.read(slot)
      if entry & X86Entry.writable != 0 {
        shadowMemory.write(slot, entry & ~(X86Entry.writable | X86Entry.dirty))
        changed = true
      }
    }
    if changed { tlb.invalidateAll { _ in true } }
  }

  /// Brings an unsync page back in sync: its entries are dropped (they refill from the guest's
  /// tables on demand) and its guest table is write-protected again.
  func resync(_ id: Int) {
    let page = pages[id]
    for index in 0..<UInt64(512) { zap(page.frame << 12 | index << 3, in: page) }
    pages[id].unsync = false
    writeProtect(page.key.guestFrame)
    tlb.invalidateAll { _ in true }
  }

  /// Syncs page `id` if it is out of sync.
  func syncIfUnsync(_ id: Int) {
    if pages[id].unsync { resync(id) }
  }

  /// Resyncs every unsync page (SEMANTICS §5.4: MOV to CR3, INVPCID of a whole context).
  func resyncAll() {
    for id in pages.pages.indices where pages.pages[id]?.unsync == true { resync(id) }
  }

  /// Clears the shadow entry at `slot` of `page`: a leaf leaves the reverse map, a link leaves
  /// its child's parent list.
  func zap(_ slot: UInt64, in page: ShadowPage) {
    let entry = shadowMemory.read(slot)
    guard entry & X86Entry.present != 0 else { return }
    if page.level == 1 {
      reverseMap.remove(page.guestFrames[Int((slot & 0xFFF) >> 3)], entry: slot)
    } else if let child = pages.page(inFrame: X86Entry.frame(entry)) {
      pages[child].parents.removeAll { $0 == slot }
    }
    shadowMemory.write(slot, 0)
  }

  /// A guest write to guest table `gfn` at `offset`, trapped (or done by the hypervisor):
  /// the entry that shadows the written guest entry is dropped in every page of the table, and
  /// refills from the new value on demand (KVM `kvm_mmu_pte_write`).
  func tableWritten(_ gfn: UInt64, offset: UInt64) {
    let index = (offset & 0xFFF) >> 3
    for id in pages.shadowing(gfn) {
      let page = pages[id]
      zap(page.frame << 12 | index << 3, in: page)
    }
    tlb.invalidateAll { _ in true }
  }

  /// A guest store (`writeGuest`): plain when the frame is not a write-protected table; a
  /// write-protection trap otherwise, which unsyncs a level-1 table or emulates the write.
  func writeGuest(_ gpa: UInt64, _ value: UInt64) -> TraceResult {
    guard let hpa = p2m.backing(gpa, memory.view) else { return .refused(.unbackedGuestPhysical) }
    let gfn = gpa >> 12
    if isWriteProtected(gfn) {
      exits.record(.writeProtectionTrap)
      if configuration.shadowWritePolicy == .unsyncLevel1 && canUnsync(gfn) {
        unsync(gfn)
        memory.write(hpa, value)
      } else {
        memory.write(hpa, value)
        tableWritten(gfn, offset: gpa)
      }
    } else {
      memory.write(hpa, value)
    }
    hostMemoryWritten(hpa)
    return .completed
  }

  /// A hypervisor store (`writeHost`).
  func writeHost(_ hpa: UInt64, _ value: UInt64) {
    memory.write(hpa, value)
    if let gfn = backingFrames[hpa >> 12], !p2mTableFrames.contains(hpa >> 12) {
      tableWritten(gfn, offset: hpa)
    }
    hostMemoryWritten(hpa)
  }

  /// After any store to host memory: a store to the P2M's tables changes guest-physical
  /// mappings, so every shadow page goes (KVM's MMU-notifier path, simplified to zap-all).
  func hostMemoryWritten(_ hpa: UInt64) {
    guard p2mTableFrames.contains(hpa >> 12) else { return }
    zapAll()
  }

  /// Drops every shadow page and cached translation; the shadow refills on demand.
  func zapAll() {
    pages.removeAll()
    reverseMap.removeAll()
    backingFrames = [:]
    releaseAllShadowFrames()
    tlb.flush()
    p2mTableFrames = p2m.tableFrames(memory.view)
    controlsChanged()
  }

  /// Guest INVLPG (SEMANTICS §5.4): the shadow leaf for `address` is dropped (an unsync page
  /// refills it from the guest's current entry) and the TLB forgets the address.
  func invalidatePage(_ address: UInt64) {
    var page = rootPage()
    var level = page.level
    while level > 1 {
      let entry = shadowMemory.read(page.frame << 12 | X86Entry.index(address, level: level) << 3)
      guard entry & X86Entry.present != 0, let child = pages.page(inFrame: X86Entry.frame(entry))
      else { break }
      page = pages[child]
      level -= 1
    }
    if level == 1 { zap(page.frame << 12 | X86Entry.index(address, level: 1) << 3, in: page) }
    tlb.invalidate(address: address) { _ in true }
  }

  /// A guest flush of a whole context: every unsync page resyncs and the TLB empties.
  func flushGuestTLB() {
    resyncAll()
    tlb.flush()
  }

  /// MOV to a register: CR0, CR3, CR4 and EFER writes are intercepted (a control-register
  /// exit), change the shadow root or role, and resync; RFLAGS, PKRU and PKRS only change what
  /// the hardware checks; the VPID retags the TLB; the nested root changes the P2M.
  func write(_ register: RegisterName, _ value: UInt64) -> TraceResult {
    switch register {
    case .vpid:
      guard value <= 0xFFFF else { return .refused(.invalidValue) }
      vpid = value
      controlsChanged()
      return .completed
    case .nestedRoot:
      return setP2MRoot(value)
    default: break
    }
    guard let next = registers.writing(register, value) else { return .refused(.invalidValue) }
    guard let decoded = PagingControl(next, processor: processor, configuration: configuration)
    else {
      return .refused(.invalidValue)
    }
    let intercepted = [.cr0, .cr3, .cr4, .efer].contains(register)
    if intercepted { exits.record(.controlRegisterAccess) }
    #if NESTCHECK_BUGS
      let staleWriteProtect = guest.writeProtect
      let onlyWriteProtectToggled =
        register == .cr0 && registers.cr0 ^ value == ControlBit.cr0WriteProtect
    #endif
    // The shadow tables are not tagged by PCID: a switch to another PCID cannot keep them
    // unsynced (what was cached under the old PCID is not the new one's, §6.1).
    let samePCID = registers.cr3 & 0xFFF == next.cr3 & 0xFFF
    registers = next
    guest = decoded
    #if NESTCHECK_BUGS
      if guest.bugs.contains(.staleWriteProtectInRole) && onlyWriteProtectToggled {
        guest.writeProtect = staleWriteProtect  // the MMU context is not rebuilt
      }
    #endif
    let noFlush =
      register == .cr3 && decoded.pcidEnabled && value & ControlBit.cr3NoFlush != 0 && samePCID
    if intercepted && !noFlush { flushGuestTLB() }
    controlsChanged()
    return .completed
  }

  private func setP2MRoot(_ value: UInt64) -> TraceResult {
    var next = nestedSnapshot
    switch nestedSnapshot {
    case .none: return .refused(.invalidValue)
    case .ept(var ept):
      ept.eptp = value
      next = .ept(ept)
    case .npt(var npt):
      npt.nCR3 = value
      next = .npt(npt)
    }
    guard let decoded = try? NestedDimension(next) else { return .refused(.invalidValue) }
    nestedSnapshot = next
    p2m = decoded
    zapAll()
    return .completed
  }
}
