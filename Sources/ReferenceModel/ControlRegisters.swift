/// The control-register bits the walk reads (SEMANTICS §1.1, Intel SDM Vol. 3A §2.5, §4.1).
///
/// | register | bit | name  | meaning for the walk                               |
/// |----------|-----|-------|----------------------------------------------------|
/// | CR0      | 31  | PG    | paging on                                          |
/// | CR0      | 16  | WP    | supervisor writes honour R/W                       |
/// | CR4      | 5   | PAE   | PAE-style (64-bit) entries; required for long mode |
/// | CR4      | 12  | LA57  | 5-level paging                                     |
/// | CR4      | 20  | SMEP  | supervisor-mode execution prevention               |
/// | CR4      | 21  | SMAP  | supervisor-mode access prevention                  |
/// | CR4      | 22  | PKE   | protection keys for user-mode addresses (PKRU)     |
/// | CR4      | 24  | PKS   | protection keys for supervisor-mode addresses      |
/// | EFER     | 10  | LMA   | long mode active                                   |
/// | EFER     | 11  | NXE   | bit 63 of entries is XD; otherwise reserved        |
/// | RFLAGS   | 18  | AC    | explicit supervisor accesses bypass SMAP           |
enum RegisterBit {
  static let cr0Paging = 31
  static let cr0WriteProtect = 16
  static let cr4PhysicalAddressExtension = 5
  static let cr4FiveLevel = 12
  static let cr4SupervisorExecutePrevention = 20
  static let cr4SupervisorAccessPrevention = 21
  static let cr4UserKeys = 22
  static let cr4SupervisorKeys = 24
  static let eferLongModeActive = 10
  static let eferExecuteDisableEnable = 11
  static let rflagsAlignmentCheck = 18
}

/// The guest's control state as the walk reads it, in a domain: decoded from raw register
/// words by the domain's own operations, so a symbolic register stays symbolic.
public struct GuestControl<D: BitVectorDomain> {
  /// The root table's guest physical address: CR3[M-1:12].
  public var root: D.Word
  /// CR0.WP.
  public var writeProtect: D.Flag
  /// CR4.SMEP.
  public var smep: D.Flag
  /// CR4.SMAP.
  public var smap: D.Flag
  /// CR4.PKE.
  public var userKeys: D.Flag
  /// CR4.PKS.
  public var supervisorKeys: D.Flag
  /// EFER.NXE.
  public var executeDisable: D.Flag
  /// RFLAGS.AC.
  public var alignmentCheck: D.Flag
  /// PKRU.
  public var pkru: D.Word
  /// IA32_PKRS.
  public var pkrs: D.Word

  /// Decodes raw register words; `addressBits` is MAXPHYADDR, which bounds CR3's address.
  public init(
    _ d: D, cr0: D.Word, cr3: D.Word, cr4: D.Word, efer: D.Word, rflags: D.Word,
    pkru: D.Word, pkrs: D.Word, addressBits: Int
  ) {
    root = d.masked(cr3, mask(addressBits - 1, 12))
    writeProtect = d.bit(cr0, RegisterBit.cr0WriteProtect)
    smep = d.bit(cr4, RegisterBit.cr4SupervisorExecutePrevention)
    smap = d.bit(cr4, RegisterBit.cr4SupervisorAccessPrevention)
    userKeys = d.bit(cr4, RegisterBit.cr4UserKeys)
    supervisorKeys = d.bit(cr4, RegisterBit.cr4SupervisorKeys)
    executeDisable = d.bit(efer, RegisterBit.eferExecuteDisableEnable)
    alignmentCheck = d.bit(rflags, RegisterBit.rflagsAlignmentCheck)
    self.pkru = pkru
    self.pkrs = pkrs
  }

  /// A control state given flag by flag (the nested walk of NPT builds one, SEMANTICS §3.5).
  public init(
    _ d: D, root: D.Word, writeProtect: D.Flag, smep: D.Flag, smap: D.Flag, userKeys: D.Flag,
    supervisorKeys: D.Flag, executeDisable: D.Flag, alignmentCheck: D.Flag
  ) {
    self.root = root
    self.writeProtect = writeProtect
    self.smep = smep
    self.smap = smap
    self.userKeys = userKeys
    self.supervisorKeys = supervisorKeys
    self.executeDisable = executeDisable
    self.alignmentCheck = alignmentCheck
    self.pkru = d.word(0)
    self.pkrs = d.word(0)
  }
}

extension GuestControl: Sendable where D.Word: Sendable, D.Flag: Sendable {}
