import Machine

/// Bit positions of the control registers the walkers read (SEMANTICS §1.1, Intel SDM Vol. 3A
/// §2.5 and §4.1). Named once here; everything else asks ``PagingControl``.
enum ControlBit {
  static let cr0Paging: UInt64 = 1 << 31
  static let cr0WriteProtect: UInt64 = 1 << 16
  static let cr4PhysicalAddressExtension: UInt64 = 1 << 5
  static let cr4GlobalPages: UInt64 = 1 << 7
  static let cr4FiveLevel: UInt64 = 1 << 12
  static let cr4ContextIdentifiers: UInt64 = 1 << 17
  static let cr4SupervisorExecuteProtection: UInt64 = 1 << 20
  static let cr4SupervisorAccessProtection: UInt64 = 1 << 21
  static let cr4ProtectionKeys: UInt64 = 1 << 22
  static let cr4SupervisorProtectionKeys: UInt64 = 1 << 24
  static let eferLongModeActive: UInt64 = 1 << 10
  static let eferExecuteDisable: UInt64 = 1 << 11
  static let rflagsAlignmentCheck: UInt64 = 1 << 18
  /// MOV to CR3 with CR4.PCIDE = 1: bit 63 of the source asks not to flush the new PCID.
  static let cr3NoFlush: UInt64 = 1 << 63
}

/// The guest's paging controls, decoded from raw registers (SEMANTICS §1.1). The fast MMU
/// decodes registers itself; nothing here is shared with any other implementation.
struct PagingControl {
  /// CR0.PG.
  var paging: Bool
  /// 4 or 5 with paging on (CR4.LA57), 0 with paging off.
  var levels: Int
  /// CR3[M-1:12]: the root table's address.
  var root: UInt64
  /// CR3[11:0] when CR4.PCIDE = 1, else 0.
  var pcid: UInt64
  var writeProtect: Bool
  var smep: Bool
  var smap: Bool
  var userKeys: Bool
  var supervisorKeys: Bool
  var executeDisable: Bool
  var globalPages: Bool
  var pcidEnabled: Bool
  var alignmentCheck: Bool
  var pkru: UInt32
  var pkrs: UInt32
  /// MAXPHYADDR: entry bits from here to 51 are reserved.
  var addressBits: Int
  var reserved: X86ReservedBits
  #if NESTCHECK_BUGS
    /// The bugs the MMU was made with (``InjectedBug``); only guest controls carry them.
    var bugs = InjectedBugSet()
  #endif

  /// Decodes a register set; `nil` for paging modes outside scope (32-bit and PAE paging:
  /// CR0.PG = 1 without CR4.PAE and EFER.LMA).
  init?(_ registers: GuestRegisters, processor: Processor) {
    let cr0 = registers.cr0
    let cr4 = registers.cr4
    let efer = registers.efer
    paging = cr0 & ControlBit.cr0Paging != 0
    let longMode =
      cr4 & ControlBit.cr4PhysicalAddressExtension != 0 && efer & ControlBit.eferLongModeActive != 0
    if paging && !longMode { return nil }
    levels = paging ? (cr4 & ControlBit.cr4FiveLevel != 0 ? 5 : 4) : 0
    addressBits = processor.physicalAddressBits
    root = registers.cr3 & X86ReservedBits.bits(UInt64(addressBits) - 1, 12)
    pcidEnabled = cr4 & ControlBit.cr4ContextIdentifiers != 0
    pcid = pcidEnabled ? registers.cr3 & 0xFFF : 0
    writeProtect = cr0 & ControlBit.cr0WriteProtect != 0
    smep = cr4 & ControlBit.cr4SupervisorExecuteProtection != 0
    smap = cr4 & ControlBit.cr4SupervisorAccessProtection != 0
    userKeys = cr4 & ControlBit.cr4ProtectionKeys != 0
    supervisorKeys = cr4 & ControlBit.cr4SupervisorProtectionKeys != 0
    executeDisable = efer & ControlBit.eferExecuteDisable != 0
    globalPages = cr4 & ControlBit.cr4GlobalPages != 0
    alignmentCheck = registers.rflags & ControlBit.rflagsAlignmentCheck != 0
    pkru = UInt32(truncatingIfNeeded: registers.pkru)
    pkrs = UInt32(truncatingIfNeeded: registers.pkrs)
    reserved = X86ReservedBits(
      addressBits: addressBits, executeDisable: executeDisable,
      gigabytePages: processor.gigabytePages, amd: processor.vendor == .amd)
  }

  /// Decodes a guest's register set for an MMU made with `configuration`, which in debug builds
  /// may carry injected bugs.
  init?(_ registers: GuestRegisters, processor: Processor, configuration: MMUConfiguration) {
    self.init(registers, processor: processor)
    #if NESTCHECK_BUGS
      bugs = configuration.bugs
      if bugs.contains(.amdBit8NotReserved) {
        reserved = X86ReservedBits(
          addressBits: addressBits, executeDisable: executeDisable,
          gigabytePages: processor.gigabytePages, amd: false)
      }
    #endif
  }

  /// Whether protection keys are checked at all (CR4.PKE or CR4.PKS, with paging on).
  var keysEnabled: Bool { paging && (userKeys || supervisorKeys) }

  /// SEMANTICS §1.2: LA[63:47] (LA[63:56] with 5-level paging) all equal.
  @inline(__always)
  func isCanonical(_ address: UInt64) -> Bool {
    let shift: UInt64 = levels == 5 ? 7 : 16
    return Int64(bitPattern: address << shift) >> shift == Int64(bitPattern: address)
  }

  /// SEMANTICS §1.7 step 3: the error-code bits that describe the access — W/R, U/S, and I/D
  /// for a fetch when SMEP or NXE is on — present in every #PF the access raises.
  @inline(__always)
  func errorCodeBase(_ access: Access) -> UInt64 {
    var code: UInt64 = access.kind == .write ? PageFaultCode.write : 0
    if access.user { code |= PageFaultCode.user }
    if access.kind == .fetch && (smep || executeDisable) { code |= PageFaultCode.fetch }
    #if NESTCHECK_BUGS
      if access.kind == .fetch && bugs.contains(.fetchBitWithoutSMEPOrNXE) {
        code |= PageFaultCode.fetch
      }
    #endif
    return code
  }
}

/// The page-fault error code's bits (SEMANTICS §1.6).
enum PageFaultCode {
  static let present: UInt64 = 1 << 0
  static let write: UInt64 = 1 << 1
  static let user: UInt64 = 1 << 2
  static let reserved: UInt64 = 1 << 3
  static let fetch: UInt64 = 1 << 4
  static let protectionKey: UInt64 = 1 << 5
}

extension GuestRegisters {
  /// The registers after MOV to `register` (SEMANTICS §1.1): CR3 keeps the value without its
  /// no-flush bit 63; `nil` for a value the architecture refuses (PKRU and PKRS are 32 bits
  /// wide). The VM-control fields (VPID, nested root) are not guest registers and leave the
  /// registers as they are.
  func writing(_ register: RegisterName, _ value: UInt64) -> GuestRegisters? {
    var next = self
    switch register {
    case .cr0: next.cr0 = value
    case .cr3: next.cr3 = value & ~ControlBit.cr3NoFlush
    case .cr4: next.cr4 = value
    case .efer: next.efer = value
    case .rflags: next.rflags = value
    case .pkru, .pkrs:
      guard value <= UInt64(UInt32.max) else { return nil }
      if register == .pkru { next.pkru = value } else { next.pkrs = value }
    case .vpid, .nestedRoot: break
    }
    return next
  }
}
