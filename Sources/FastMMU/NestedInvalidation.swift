import Machine

/// The operations that drop cached translations under nested paging (SEMANTICS §6.1, §6.2):
/// each names the tags it reaches. Dropping more than the architecture requires is always
/// allowed (any entry may be evicted at any time); dropping less is a bug.
extension NestedMMU {
  /// Drops linear/combined mappings (TLB and combined caches) whose tag and global flag
  /// satisfy `matches`, for one address or for all. Cache entries are never global. Inlined,
  /// so each caller's predicate is inlined into the loops over the entries held.
  @inline(__always)
  private func dropCombined(
    address: UInt64? = nil, where matches: (ContextTag, _ global: Bool) -> Bool
  ) {
    let names = contexts.names
    if let address {
      tlb.invalidate(address: address) { matches(names[$0.context], $0.isGlobal) }
    } else {
      tlb.invalidateAll { matches(names[$0.context], $0.isGlobal) }
    }
    guestCache?.invalidate { matches(names[$0], false) }
  }

  /// Drops guest-physical mappings (the nested caches) whose tag satisfies `matches`.
  @inline(__always)
  private func dropGuestPhysical(where matches: (ContextTag) -> Bool) {
    let names = contexts.names
    nestedCache?.invalidate { matches(names[$0]) }
  }

  /// §6.2: a nested fault drops the guest-physical mappings of its GPA: the nested caches'
  /// entries, and the TLB's entries for the GPA's page in every VPID. A TLB entry filled while
  /// guest paging was off is a guest-physical mapping (Intel SDM Vol. 3C §29.4.1: with
  /// CR0.PG = 0 no combined mapping is made), which VPIDs do not tag; combined ones for that
  /// page go too, which eviction allows.
  private func dropGuestPhysical(_ gpa: UInt64) {
    let nestedContext = nestedContext
    nestedCache?.invalidate(address: gpa) { $0 == nestedContext }
    let names = contexts.names
    let root = names[nestedContext].root
    tlb.invalidate(address: gpa) { names[$0.context].root == root }
  }

  /// SEMANTICS §6.1/§6.2: a #PF invalidates the mappings for the faulting linear address; an
  /// EPT violation also those that translate the faulting GPA (and, with VPID 0, a VM exit
  /// drops every VPID-0 mapping). Misconfigurations and #NPF are treated alike.
  func faulted(_ address: UInt64, _ fault: Outcome) {
    let current = vpid
    switch fault {
    case .generalProtection, .translated:
      return
    case .pageFault:
      #if NESTCHECK_BUGS
        if control.bugs.contains(.faultKeepsStaleEntry) { return }
      #endif
      let names = contexts.names
      let context = context
      tlb.invalidate(address: address) { names[$0.context].vpid == current }
      guestCache?.invalidate(address: address) { $0 == context }
      return
    case .eptViolation(_, let gpa, _), .eptMisconfiguration(let gpa):
      exits.record(fault.kindName == "ept-violation" ? .eptViolation : .eptMisconfiguration)
      dropGuestPhysical(gpa)
    case .nestedPageFault(_, let gpa):
      exits.record(.nestedPageFault)
      dropGuestPhysical(gpa)
    }
    dropCombined(address: address) { tag, _ in tag.vpid == current }
    if current == 0 { dropCombined { tag, _ in tag.vpid == 0 } }
  }

  /// MOV to a register (SEMANTICS §6.1 "MOV to CR3", "MOV to CR4", and the VM controls).
  func write(_ register: RegisterName, _ value: UInt64) -> TraceResult {
    switch register {
    case .vpid:
      guard value <= 0xFFFF else { return .refused(.invalidValue) }
      vpid = value
      controlsChanged()
      return .completed
    case .nestedRoot:
      return setNestedRoot(value)
    default: break
    }
    guard let next = registers.writing(register, value) else { return .refused(.invalidValue) }
    guard let decoded = PagingControl(next, processor: processor, configuration: configuration)
    else {
      return .refused(.invalidValue)
    }
    let old = control
    registers = next
    walker.pointee.control = decoded
    controlsChanged()
    let current = vpid
    if register == .cr3 {
      let noFlush = decoded.pcidEnabled && value & ControlBit.cr3NoFlush != 0
      if !noFlush {
        let pcid = decoded.pcid
        dropCombined { tag, global in tag.vpid == current && tag.pcid == pcid && !global }
      }
    } else if Self.rereadsEntries(old, decoded) {
      dropCombined { _, _ in true }
    } else if Self.flushesEverything(old, decoded) {
      dropCombined { tag, _ in tag.vpid == current }
    }
    return .completed
  }

  /// Control changes after which an entry reads differently — the paging mode (CR0.PG, the
  /// number of levels) or EFER.NXE (bit 63: XD or reserved) — drop every VPID's mappings, not
  /// only the current one's. More than required, always allowed: the registers are one set
  /// for every VPID here, and the oracle judges a cached translation under the controls of
  /// now (docs/fuzzing.md), so one another VPID made in another paging mode is one it cannot
  /// explain (nested seed 58 of the fuzzing campaign).
  static func rereadsEntries(_ old: PagingControl, _ new: PagingControl) -> Bool {
    old.paging != new.paging || old.levels != new.levels
      || old.executeDisable != new.executeDisable
  }

  /// Control changes after which every mapping of the VPID is dropped, globals included:
  /// CR4.PGE (required), and — more than required, always allowed — PCIDE, PAE, LA57, SMEP,
  /// SMAP, PKE, PKS, CR0.PG, CR0.WP and EFER.NXE.
  static func flushesEverything(_ old: PagingControl, _ new: PagingControl) -> Bool {
    #if NESTCHECK_BUGS
      let globalPagesToggled =
        old.globalPages != new.globalPages && !new.bugs.contains(.pgeToggleKeepsGlobals)
    #else
      let globalPagesToggled = old.globalPages != new.globalPages
    #endif
    return globalPagesToggled || old.pcidEnabled != new.pcidEnabled
      || old.paging != new.paging || old.levels != new.levels
      || old.writeProtect != new.writeProtect || old.smep != new.smep || old.smap != new.smap
      || old.userKeys != new.userKeys || old.supervisorKeys != new.supervisorKeys
      || old.executeDisable != new.executeDisable
  }

  private func setNestedRoot(_ value: UInt64) -> TraceResult {
    switch nestedSnapshot {
    case .none:
      return .refused(.invalidValue)
    case .ept(var ept):
      ept.eptp = value
      guard let decoded = try? NestedDimension(.ept(ept)) else { return .refused(.invalidValue) }
      nestedSnapshot = .ept(ept)
      nested = decoded
      makeStages()
    case .npt(var npt):
      npt.nCR3 = value
      guard let decoded = try? NestedDimension(.npt(npt)) else { return .refused(.invalidValue) }
      nestedSnapshot = .npt(npt)
      nested = decoded
      makeStages()
    }
    controlsChanged()
    return .completed
  }

  /// INVLPG: the address's mappings in the current VPID and PCID, globals included, in every
  /// EP4TA, and the current PCID's paging-structure caches (SEMANTICS §6.1, §6.2).
  func invlpg(_ address: UInt64) {
    let current = vpid
    let pcid = control.pcid
    let names = contexts.names
    guestCache?.invalidate {
      let t = names[$0]
      return t.vpid == current && t.pcid == pcid
    }
    #if NESTCHECK_BUGS
      if control.bugs.contains(.invlpgKeepsEntry) { return }
    #endif
    tlb.invalidate(address: address) {
      let t = names[$0.context]
      return t.vpid == current && (t.pcid == pcid || $0.isGlobal)
    }
  }

  /// INVPCID of each type, in the current VPID; operands that raise #GP are refused.
  func invpcid(_ type: InvpcidType, pcid: UInt64, address: UInt64) -> TraceResult {
    guard pcid <= 0xFFF else { return .refused(.invalidValue) }
    let current = vpid
    switch type {
    case .individualAddress:
      guard control.levels == 0 || control.isCanonical(address) else {
        return .refused(.invalidValue)
      }
      let names = contexts.names
      tlb.invalidate(address: address) {
        let t = names[$0.context]
        return t.vpid == current && t.pcid == pcid && !$0.isGlobal
      }
      guestCache?.invalidate {
        let t = names[$0]
        return t.vpid == current && t.pcid == pcid
      }
    case .singleContext:
      dropCombined { tag, global in tag.vpid == current && tag.pcid == pcid && !global }
    case .allContextsIncludingGlobal:
      dropCombined { tag, _ in tag.vpid == current }
    case .allContexts:
      dropCombined { tag, global in tag.vpid == current && !global }
    }
    return .completed
  }

  /// INVEPT: combined and guest-physical mappings of one EP4TA (type 1) or all (type 2).
  func invept(_ type: InveptType, eptp: UInt64) -> TraceResult {
    switch type {
    case .singleContext:
      let root: UInt64
      switch nested {
      case .none: return .refused(.invalidValue)
      case .ept(_, let format):
        guard let pointer = EPTPointer(eptp, addressBits: format.addressBits) else {
          return .refused(.invalidValue)
        }
        root = pointer.root
      case .npt:
        root = eptp & X86Entry.addressMask
      }
      dropGuestPhysical { $0.root == root }
      #if NESTCHECK_BUGS
        if control.bugs.contains(.inveptKeepsCombinedMappings) { return .completed }
      #endif
      dropCombined { tag, _ in tag.root == root }
    case .allContexts:
      dropCombined { _, _ in true }
      dropGuestPhysical { _ in true }
    }
    return .completed
  }

  /// INVVPID of each type: linear and combined mappings (SEMANTICS §6.2). VPID 0 is refused
  /// for the single-VPID types (VMfail), and type 2 spares VPID 0.
  func invvpid(_ type: InvvpidType, vpid target: UInt64, address: UInt64) -> TraceResult {
    guard target <= 0xFFFF, type == .allContexts || target != 0 else {
      return .refused(.invalidValue)
    }
    switch type {
    case .individualAddress:
      let canonical = Int64(bitPattern: address << 16) >> 16 == Int64(bitPattern: address)
      guard canonical || control.levels == 5 else { return .refused(.invalidValue) }
      dropCombined(address: address) { tag, _ in tag.vpid == target }
    case .singleContext:
      dropCombined { tag, _ in tag.vpid == target }
    case .allContexts:
      dropCombined { tag, _ in tag.vpid != 0 }
    case .singleContextRetainingGlobals:
      dropCombined { tag, global in tag.vpid == target && !global }
    }
    return .completed
  }
}
