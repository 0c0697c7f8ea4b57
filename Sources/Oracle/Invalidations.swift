import Machine
import ReferenceModel

/// What each operation invalidates (SEMANTICS §6.1 for the guest's own flushes, §6.2 for the
/// hypervisor's, §6.4 and §5.8 for what a shadow or paravirtual guest sees). Each records
/// events in the oracle's invalidation logs; the explanation search asks them how long a cached
/// translation may have survived. Where the SDM's list is unverified the oracle records the
/// smaller invalidation, so that it never refuses what hardware may do.
extension Oracle {
  /// The VPID scope of an invalidation "of the current VPID".
  var currentVPID: Invalidation.VPIDScope {
    mode.tagsByVirtualMachine ? .only(vpid) : .any
  }

  /// Records what one operation invalidates of linear and combined mappings (INVLPG: two
  /// events, which together drop everything cached for its address).
  func invalidateLinear(_ events: Invalidation...) {
    linear.record(events, contexts: linearContexts, globalsPossible: globalsPossible)
    for event in events
    where event.address == nil && event.vpid == .any && event.pcid == nil && event.ep4ta == nil
      && event.tlb == .all
    {
      globalsPossible = registers.cr4 & ControlBits.globalPages != 0
    }
    forgetIfEverythingFlushed()
  }

  func invalidatePhysical(_ event: Invalidation) {
    physical.record([event], contexts: physicalContexts, globalsPossible: false)
    forgetIfEverythingFlushed()
  }

  /// After an invalidation of everything everywhere, no old version of any word can be seen
  /// again: the history before it is dropped.
  private func forgetIfEverythingFlushed() {
    let horizon = min(linear.lastGlobal, mode == .paravirtual ? Int.max : physical.lastGlobal)
    guard horizon == epoch else { return }
    history.forget(before: horizon)
    linear.forget(before: horizon)
    physical.forget(before: horizon)
    timeline.forget(before: horizon)
  }

  /// §6.1 INVLPG: the TLB entries for the address's page (any size) in the current PCID,
  /// global ones included, and every paging-structure entry of the current PCID; under nested
  /// paging, of the current VPID and every EP4TA (§6.2).
  func invlpg(_ address: UInt64) -> TraceResult {
    let pcid = linearContext.pcid
    invalidateLinear(
      Invalidation(epoch: epoch, vpid: currentVPID, pcid: pcid, address: address, tlb: .all),
      Invalidation(epoch: epoch, vpid: currentVPID, pcid: pcid, pagingStructures: true))
    return .completed
  }

  /// §6.1 INVPCID of each type, in the current VPID. A PCID above 0xFFF, a non-zero PCID of a
  /// single-context type while CR4.PCIDE = 0, or a non-canonical address of type 0 is a #GP:
  /// refused.
  func invpcid(_ type: InvpcidType, pcid: UInt64, address: UInt64) -> TraceResult {
    guard pcid <= 0xFFF else { return .refused(.invalidValue) }
    let pcidEnabled = registers.cr4 & ControlBits.contextIdentifiers != 0
    switch type {
    case .individualAddress:
      guard pcidEnabled || pcid == 0, isCanonical(address) else { return .refused(.invalidValue) }
      invalidateLinear(
        Invalidation(
          epoch: epoch, vpid: currentVPID, pcid: pcid, address: address, tlb: .nonGlobal,
          pagingStructures: true))
    case .singleContext:
      guard pcidEnabled || pcid == 0 else { return .refused(.invalidValue) }
      invalidateLinear(
        Invalidation(
          epoch: epoch, vpid: currentVPID, pcid: pcid, tlb: .nonGlobal, pagingStructures: true))
    case .allContextsIncludingGlobal:
      invalidateLinear(
        Invalidation(epoch: epoch, vpid: currentVPID, tlb: .all, pagingStructures: true))
    case .allContexts:
      invalidateLinear(
        Invalidation(epoch: epoch, vpid: currentVPID, tlb: .nonGlobal, pagingStructures: true))
    }
    return .completed
  }

  /// §6.2 INVEPT: combined and guest-physical mappings of one EP4TA (type 1) or of all.
  /// Under nested paging an operand VM entry would refuse, or a single-context INVEPT without
  /// nested paging, is VMfail: refused. A shadow guest's virtual TLB is not the hardware's, so
  /// under shadow paging only guest-physical mappings go; under paravirtualization nothing.
  func invept(_ type: InveptType, eptp: UInt64) -> TraceResult {
    guard mode != .paravirtual else { return .completed }
    var root: UInt64? = nil
    if type == .singleContext {
      switch nested {
      case .none:
        guard mode == .shadow else { return .refused(.invalidValue) }
        root = 0
      case .ept(let ept):
        if mode == .nested {
          var probe = ept
          probe.eptp = eptp
          guard Self.validEPTP(probe) else { return .refused(.invalidValue) }
        }
        root = eptp & EntryMasks.address(bits: ept.physicalAddressBits)
      case .npt:
        root = eptp & mask(51, 12)
      }
    }
    if mode == .nested {
      invalidateLinear(Invalidation(epoch: epoch, ep4ta: root, tlb: .all, pagingStructures: true))
    }
    invalidatePhysical(Invalidation(epoch: epoch, ep4ta: root, tlb: .all, pagingStructures: true))
    return .completed
  }

  /// Whether VM entry would accept the EPT pointer (SEMANTICS §2.1), as the model decides.
  static func validEPTP(_ ept: ExtendedPageTables) -> Bool {
    let probe = MachineState(
      processor: Processor(vendor: .intel), guest: GuestRegisters(cr0: 0, cr3: 0, cr4: 0, efer: 0),
      nested: .ept(ept))
    return (try? Configuration(probe)) != nil
  }

  /// §6.2 INVVPID of each type: linear and combined mappings. VPID 0 for the single-VPID
  /// types, a VPID above 0xFFFF, or a non-canonical address of type 0 is VMfail: refused.
  /// Under shadow paging the operands are checked but the guest's virtual TLB stays; under
  /// paravirtualization there is no VMX and nothing happens.
  func invvpid(_ type: InvvpidType, vpid target: UInt64, address: UInt64) -> TraceResult {
    guard mode != .paravirtual else { return .completed }
    guard target <= 0xFFFF, type == .allContexts || target != 0 else {
      return .refused(.invalidValue)
    }
    if mode == .nested && type == .individualAddress && !isCanonical(address) {
      return .refused(.invalidValue)
    }
    guard mode == .nested else { return .completed }
    switch type {
    case .individualAddress:
      invalidateLinear(
        Invalidation(
          epoch: epoch, vpid: .only(target), address: address, tlb: .all, pagingStructures: true))
    case .singleContext:
      invalidateLinear(
        Invalidation(epoch: epoch, vpid: .only(target), tlb: .all, pagingStructures: true))
    case .allContexts:
      invalidateLinear(
        Invalidation(epoch: epoch, vpid: .allButZero, tlb: .all, pagingStructures: true))
    case .singleContextRetainingGlobals:
      invalidateLinear(
        Invalidation(epoch: epoch, vpid: .only(target), tlb: .nonGlobal, pagingStructures: true))
    }
    return .completed
  }

  /// §6.1, §6.2: a fault invalidates what could make it recur. A #PF drops the TLB entries for
  /// its linear address in the current tags and the paging-structure entries that would be used
  /// for it; an EPT violation or #NPF drops the guest-physical mappings of its GPA and the
  /// combined mappings of the linear address. Under nested paging with VPID 0 every VM exit
  /// drops VPID 0's mappings. Misconfigurations invalidate nothing (unverified, §9).
  func faulted(_ address: UInt64, _ outcome: Outcome) {
    let context = linearContext
    let tagged = mode.tagsByVirtualMachine
    var exit = false
    switch outcome {
    case .translated, .generalProtection:
      return
    case .pageFault:
      invalidateLinear(
        Invalidation(
          epoch: epoch, vpid: currentVPID, pcid: context.pcid, ep4ta: tagged ? context.ep4ta : nil,
          address: address, tlb: .nonGlobal, pagingStructures: true))
    case .eptViolation(_, let gpa, _), .nestedPageFault(_, let gpa):
      exit = true
      invalidatePhysical(
        Invalidation(
          epoch: epoch, ep4ta: physicalContext.ep4ta, address: gpa, tlb: .all,
          pagingStructures: true))
      invalidateLinear(
        Invalidation(
          epoch: epoch, vpid: currentVPID, ep4ta: tagged ? context.ep4ta : nil, address: address,
          tlb: .nonGlobal, pagingStructures: true))
    case .eptMisconfiguration:
      exit = true
    }
    if exit && mode == .nested && vpid == 0 {
      invalidateLinear(
        Invalidation(epoch: epoch, vpid: .only(0), tlb: .all, pagingStructures: true))
    }
  }

  /// §1.2: LA[63:47] (LA[63:56] with 5-level paging) all equal.
  func isCanonical(_ address: UInt64) -> Bool {
    let shift: UInt64 = registers.cr4 & ControlBits.fiveLevel != 0 ? 7 : 16
    return Int64(bitPattern: address << shift) >> shift == Int64(bitPattern: address)
  }
}
