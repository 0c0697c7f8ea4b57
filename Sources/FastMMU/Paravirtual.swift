import Machine

/// The paravirtual page-table update path (SEMANTICS §5.8): `HYPERVISOR_mmu_update` and the
/// writable-pagetable emulation of a direct store, over ``PageTypes``.
extension ParavirtualMMU {
  /// PV_MMU_UPDATE: requests applied in order; the first that fails validation stops the
  /// batch with `-EINVAL` and the number applied. No TLB entry is flushed: stale translations
  /// persist until the guest asks for a flush.
  func mmuUpdate(_ updates: [PageTableUpdate]) -> TraceResult {
    #if NESTCHECK_BUGS
      if configuration.bugs.contains(.paravirtualBatchContinuesAfterFailure) {
        var applied = 0
        for update in updates where apply(update) { applied += 1 }
        return .batch(
          status: applied == updates.count ? 0 : TraceResult.invalidStatus, applied: applied)
      }
    #endif
    for (index, update) in updates.enumerated() where !apply(update) {
      return .batch(status: TraceResult.invalidStatus, applied: index)
    }
    return .batch(status: 0, applied: updates.count)
  }

  /// One `MMU_NORMAL_PT_UPDATE` or `MMU_PT_UPDATE_PRESERVE_AD` request (steps 1c and 1d):
  /// the entry must lie in a validated table; the new value must validate at that table's
  /// level; the old value's references are then dropped and the entry written.
  func apply(_ update: PageTableUpdate) -> Bool {
    guard let machine = p2m.backing(update.entry, memory.view),
      let value = machineEntry(update.value)
    else { return false }
    let level = types.tableLevel(machine >> 12)
    guard level > 0 else { return false }
    let old = memory.read(machine)
    var new = value
    if update.preserveAccessedDirty { new |= old & (X86Entry.accessed | X86Entry.dirty) }
    guard types.acquireEntry(new, level: level, memory: memory) else { return false }
    types.releaseEntry(old, level: level, memory: memory)
    memory.write(machine, new)
    return true
  }

  /// A guest entry with its guest-physical frame (bits M-1:12) replaced by the machine frame
  /// backing it, as a PV kernel writes entries (`pfn_to_mfn`); bits 51:M, reserved, are kept
  /// for validation to see. `nil` if no machine frame backs the frame.
  func machineEntry(_ entry: UInt64) -> UInt64? {
    guard entry & X86Entry.present != 0 else { return entry }
    let frameBits = X86ReservedBits.bits(UInt64(control.addressBits) - 1, 12)
    guard let machine = p2m.backing(entry & frameBits, memory.view) else { return nil }
    return entry & ~frameBits | machine & frameBits
  }

  /// A direct guest store: to a validated table it traps and is emulated as a one-request
  /// update (writable-pagetable emulation), refused if it does not validate; elsewhere it is
  /// a plain store.
  func writeGuest(_ gpa: UInt64, _ value: UInt64) -> TraceResult {
    guard let machine = p2m.backing(gpa, memory.view) else {
      return .refused(.unbackedGuestPhysical)
    }
    guard types.tableLevel(machine >> 12) > 0 else {
      memory.write(machine, value)
      return .completed
    }
    exits.record(.writeProtectionTrap)
    return apply(PageTableUpdate(entry: gpa, value: value))
      ? .completed : .refused(.validationFailed)
  }

  /// `MMUEXT_NEW_BASEPTR`: the new root must validate as a top-level table; it is pinned and
  /// the old root released.
  func newBasePointer(_ rootFrame: UInt64) -> Bool {
    let levels = control.levels
    guard types.acquireTable(rootFrame, level: levels, memory: memory) else { return false }
    types.setPinned(rootFrame, true)
    if rootFrame != pinnedRoot {
      types.setPinned(pinnedRoot, false)
      types.releaseTable(pinnedRoot, level: levels, memory: memory)
    } else {
      types.releaseTable(rootFrame, level: levels, memory: memory)
    }
    pinnedRoot = rootFrame
    return true
  }
}

/// The PV domain builder's work on a snapshot whose guest tables hold guest-physical frames:
/// every table reachable from CR3 is rewritten in place to hold machine frames.
struct DomainBuilder {
  let p2m: NestedDimension
  let memory: HostMemory

  /// Rewrites the tables under the root at guest-physical `root` with `levels` levels and
  /// returns the root's machine address.
  func convert(root: UInt64, levels: Int) throws(MMUSetupError) -> UInt64 {
    guard let machineRoot = p2m.backing(root, memory.view) else {
      throw MMUSetupError("no machine frame backs the guest's root table \(hex(root))")
    }
    var done: [UInt64: Int] = [:]
    var pending = [(machineRoot >> 12, levels)]
    while let (frame, level) = pending.popLast() {
      if let seen = done[frame] {
        guard seen == level else {
          throw MMUSetupError("guest table frame \(hex(frame << 12)) is used at two levels")
        }
        continue
      }
      done[frame] = level
      for index in 0..<UInt64(512) {
        let slot = frame << 12 | index << 3
        let entry = memory.read(slot)
        guard entry & X86Entry.present != 0 else { continue }
        if level > 1 && X86Entry.isLeaf(entry, level: level) {
          throw MMUSetupError("a paravirtual guest may not map large pages (\(hex(slot)))")
        }
        guard let machine = p2m.backing(entry & X86Entry.addressMask, memory.view) else {
          throw MMUSetupError("no machine frame backs the frame entry \(hex(slot)) maps")
        }
        memory.write(slot, entry & ~X86Entry.addressMask | machine & X86Entry.addressMask)
        if level > 1 { pending.append((machine >> 12, level - 1)) }
      }
    }
    return machineRoot & X86Entry.addressMask
  }
}
