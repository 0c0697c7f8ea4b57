import Machine
import ReferenceModel

/// Paravirtual paging as the oracle models it (SEMANTICS §5.8): the guest's tables hold
/// machine frames and are what the hardware walks (WALK64 with no nested stage); the guest
/// names memory by guest-physical address and a P2M — the snapshot's nested tables, read in
/// software — gives the machine frame; every store to a page table is validated by the page
/// types of ``ParavirtualTypes``, batches stop at the first request that fails, and nothing is
/// flushed unless the guest asks. Validation's reserved bits are the domain's, fixed when it
/// is built (Xen checks entries against the host's NX support, not the guest's EFER), while
/// the walk reads the guest's current controls.
struct ParavirtualDomain {
  var types: ParavirtualTypes

  /// The domain builder: converts the snapshot's tables to machine frames (every table
  /// reachable from CR3, rewritten in place through the P2M), then validates and pins the root.
  /// Returns the domain and the converted machine, whose CR3 holds the machine root and which
  /// has no nested stage.
  static func build(_ state: MachineState) throws(OracleSetupError) -> (
    domain: ParavirtualDomain, machine: MachineState
  ) {
    let g = state.guest
    let longMode =
      g.cr0 & ControlBits.paging != 0 && g.cr4 & ControlBits.physicalAddressExtension != 0
      && g.efer & 1 << 10 != 0
    guard longMode else {
      throw OracleSetupError("a paravirtual guest runs with 4- or 5-level long-mode paging")
    }
    let levels = g.cr4 & ControlBits.fiveLevel != 0 ? 5 : 4
    let bits = state.processor.physicalAddressBits
    let frameMask = EntryMasks.address(bits: bits)
    let original: ConcreteModel
    do {
      original = try ConcreteModel(state)
    } catch {
      throw OracleSetupError("the reference model refuses the state: \(error.message)")
    }
    func machine(_ gpa: UInt64) -> UInt64? {
      Oracle.backing(gpa, model: original, nested: state.nested)
    }
    guard let root = machine(g.cr3 & frameMask) else {
      throw OracleSetupError("no machine frame backs the guest's root table")
    }
    var memory = state.memory
    var done: [UInt64: Int] = [:]
    var pending = [(frame: (root & frameMask) >> 12, level: levels)]
    while let (frame, level) = pending.popLast() {
      if let seen = done[frame] {
        guard seen == level else {
          throw OracleSetupError("guest table frame \(hex(frame << 12)) is used at two levels")
        }
        continue
      }
      done[frame] = level
      for index in 0..<UInt64(512) {
        let slot = frame << 12 | index << 3
        let entry = memory[slot]
        guard entry & 1 != 0 else { continue }
        if level > 1 && level < 4 && entry & 1 << 7 != 0 {
          throw OracleSetupError("a paravirtual guest maps no large pages (entry \(hex(slot)))")
        }
        guard let target = machine(entry & frameMask) else {
          throw OracleSetupError("no machine frame backs the frame entry \(hex(slot)) maps")
        }
        memory[slot] = entry & ~frameMask | target & frameMask
        if level > 1 { pending.append(((target & frameMask) >> 12, level - 1)) }
      }
    }
    var converted = state
    converted.memory = memory
    converted.nested = .none
    converted.guest.cr3 = root & frameMask | g.cr3 & 0xFFF
    var types = ParavirtualTypes(
      levels: levels, addressBits: bits, vendor: state.processor.vendor,
      gigabytePages: state.processor.gigabytePages,
      executeDisable: g.efer & ControlBits.executeDisable != 0)
    guard types.pinRoot((root & frameMask) >> 12, memory: FrameMemory(memory)) else {
      throw OracleSetupError(
        "the guest's tables do not validate: a table frame mapped writable, reserved bits, "
          + "or a large page")
    }
    return (ParavirtualDomain(types: types), converted)
  }
}

/// The paravirtual operations (SEMANTICS §5.8).
extension Oracle {
  private var frameMask: UInt64 { EntryMasks.address(bits: processor.physicalAddressBits) }

  /// A direct guest store: to a validated table it traps and is emulated as a one-request
  /// update (writable-pagetable emulation), refused when it does not validate; elsewhere a
  /// plain store.
  func paravirtualStore(_ gpa: UInt64, _ value: UInt64) -> TraceResult {
    guard let machine = backing(gpa) else { return .refused(.unbackedGuestPhysical) }
    guard let domain = paravirtual, domain.types.tableLevel(machine >> 12) > 0 else {
      store(machine, value)
      return .completed
    }
    return paravirtualUpdate(PageTableUpdate(entry: gpa, value: value))
      ? .completed : .refused(.validationFailed)
  }

  /// PV_MMU_UPDATE: requests in order; the first that fails stops the batch with `-EINVAL` and
  /// the number applied. No TLB entry is flushed.
  func paravirtualBatch(_ updates: [PageTableUpdate]) -> TraceResult {
    for (index, update) in updates.enumerated() where !paravirtualUpdate(update, index: index) {
      return .batch(status: TraceResult.invalidStatus, applied: index)
    }
    return .batch(status: 0, applied: updates.count)
  }

  /// One request: the entry's machine address through the P2M, the value's frame through the
  /// P2M (as a PV kernel writes entries, `pfn_to_mfn`), then the page types' validation.
  /// `index`: its place in a batch (see ``Oracle/backing(_:batchIndex:)``).
  private func paravirtualUpdate(_ update: PageTableUpdate, index: Int? = nil) -> Bool {
    guard var domain = paravirtual, let machine = backing(update.entry, batchIndex: index),
      let value = machineEntry(update.value, batchIndex: index)
    else { return false }
    guard
      let stored = domain.types.update(
        entry: machine, value: value, preserveAccessedDirty: update.preserveAccessedDirty,
        memory: model.state.memory)
    else { return false }
    paravirtual = domain
    let unknown =
      update.preserveAccessedDirty ? uncertain[machine] & EntryMasks.accessedDirty : 0
    store(machine, stored)
    uncertain.add(machine, unknown & ~stored)
    return true
  }

  /// An entry with its guest-physical frame (bits M-1:12) replaced by the machine frame behind
  /// it; `nil` if none backs it. Not-present entries are kept as they are.
  private func machineEntry(_ entry: UInt64, batchIndex: Int? = nil) -> UInt64? {
    guard entry & 1 != 0 else { return entry }
    guard let machine = backing(entry & frameMask, batchIndex: batchIndex) else { return nil }
    return entry & ~frameMask | machine & frameMask
  }

  /// Register writes of a paravirtual guest: CR3 is `MMUEXT_NEW_BASEPTR` (the root, named by
  /// guest-physical address, must validate as a top-level table); CR0, CR4 and EFER may not
  /// turn paging off or change its depth; the VM controls do not exist.
  func paravirtualWrite(_ register: RegisterName, _ value: UInt64, _ requested: GuestRegisters)
    -> TraceResult
  {
    var next = requested
    if register == .cr3 {
      guard let root = backing(next.cr3 & frameMask) else {
        return .refused(.unbackedGuestPhysical)
      }
      next.cr3 = root & frameMask | value & 0xFFF
    }
    let levels = next.cr4 & ControlBits.fiveLevel != 0 ? 5 : 4
    let longMode =
      next.cr0 & ControlBits.paging != 0 && next.cr4 & ControlBits.physicalAddressExtension != 0
      && next.efer & 1 << 10 != 0
    guard longMode, levels == guestLevels,
      (try? ModelState<Concrete>(MachineState(processor: processor, guest: next))) != nil
    else { return .refused(.invalidValue) }
    if register == .cr3 {
      guard var domain = paravirtual,
        domain.types.newBasePointer((next.cr3 & frameMask) >> 12, memory: model.state.memory)
      else { return .refused(.validationFailed) }
      paravirtual = domain
    }
    let old = registers
    do {
      try loadControls(next, nested: nested)
    } catch {
      return .refused(.invalidValue)
    }
    invalidate(after: register, old: old, new: next, value: value)
    return .completed
  }
}
