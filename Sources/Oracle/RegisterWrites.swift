import Machine
import ReferenceModel

/// MOV to a control register, an MSR write, and the VM-control fields (SEMANTICS §1.1, §6.1):
/// the value the register takes, when the write is refused, and what it invalidates.
///
/// A write is refused (#GP, or VMfail for the VM controls) when the reference model refuses the
/// controls it would make — a paging mode outside scope, CR3 or an EPTP with reserved bits, EFER
/// inconsistent with CR0 — or when PKRU/PKRS get more than 32 bits or the VPID more than 16.
/// Invalidations follow §6.1: MOV to CR3 by the PCID rules; a change of CR4.PGE, PCIDE 1→0,
/// PAE or LA57, of CR0.PG, or of EFER.NXE or LME drops everything of the current VPID; other
/// changes (CR0.WP, SMEP, SMAP, keys, AC) drop nothing: cached rights are checked against the
/// controls at the time of use.
extension Oracle {
  func writeRegister(_ register: RegisterName, _ value: UInt64) -> TraceResult {
    switch register {
    case .vpid:
      guard mode != .paravirtual, value <= 0xFFFF else { return .refused(.invalidValue) }
      vpid = value
      controlsChanged()
      return .completed
    case .nestedRoot:
      guard mode != .paravirtual else { return .refused(.invalidValue) }
      var next = nested
      switch nested {
      case .none: return .refused(.invalidValue)
      case .ept(var ept):
        if ept.eptp & 1 << 6 == 0 { accessedDirtyOffUntil[nestedRoot] = epoch - 1 }
        ept.eptp = value
        next = .ept(ept)
      case .npt(var npt):
        npt.nCR3 = value
        next = .npt(npt)
      }
      do {
        try loadControls(registers, nested: next)
      } catch {
        return .refused(.invalidValue)
      }
      return .completed
    default:
      break
    }
    guard let next = Self.writing(registers, register, value) else {
      return .refused(.invalidValue)
    }
    if mode == .paravirtual { return paravirtualWrite(register, value, next) }
    let old = registers
    do {
      try loadControls(next, nested: nested)
    } catch {
      return .refused(.invalidValue)
    }
    invalidate(after: register, old: old, new: next, value: value)
    return .completed
  }

  /// The registers after MOV to `register`: CR3 without its no-flush bit 63; `nil` for PKRU or
  /// PKRS values wider than 32 bits.
  static func writing(_ registers: GuestRegisters, _ register: RegisterName, _ value: UInt64)
    -> GuestRegisters?
  {
    var next = registers
    switch register {
    case .cr0: next.cr0 = value
    case .cr3: next.cr3 = value & ~ControlBits.noFlush
    case .cr4: next.cr4 = value
    case .efer: next.efer = value
    case .rflags: next.rflags = value
    case .pkru, .pkrs:
      guard value >> 32 == 0 else { return nil }
      if register == .pkru { next.pkru = value } else { next.pkrs = value }
    case .vpid, .nestedRoot: break
    }
    return next
  }

  /// §6.1: what a register write invalidates, in the current VPID (every EP4TA).
  func invalidate(
    after register: RegisterName, old: GuestRegisters, new: GuestRegisters, value: UInt64
  ) {
    let pcidEnabled = new.cr4 & ControlBits.contextIdentifiers != 0
    switch register {
    case .cr3:
      if pcidEnabled && value & ControlBits.noFlush != 0 { return }
      invalidateLinear(
        Invalidation(
          epoch: epoch, vpid: currentVPID, pcid: pcidEnabled ? new.cr3 & 0xFFF : 0,
          tlb: .nonGlobal, pagingStructures: true))
    case .cr4, .cr0, .efer:
      let cr4Flush =
        ControlBits.globalPages | ControlBits.physicalAddressExtension | ControlBits.fiveLevel
      let pcidOff =
        old.cr4 & ControlBits.contextIdentifiers != 0 && !pcidEnabled
      let changed =
        (old.cr4 ^ new.cr4) & cr4Flush != 0 || pcidOff
        || (old.cr0 ^ new.cr0) & ControlBits.paging != 0
        || (old.efer ^ new.efer) & (ControlBits.executeDisable | 1 << 8 | 1 << 10) != 0
      guard changed else { return }
      invalidateLinear(
        Invalidation(epoch: epoch, vpid: currentVPID, tlb: .all, pagingStructures: true))
    default:
      return
    }
  }
}
