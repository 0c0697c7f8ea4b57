import Machine

/// The machine a spec describes, before any table exists: the processor, the guest's control
/// registers (given or defaulted, and checked against the paging mode), and the nested
/// configuration. Roots are filled in when the tables are built.
struct MachineSetup {
  /// The processor.
  let processor: Processor
  /// The guest's paging levels: 4, 5, or 0 with paging off.
  let guestLevels: Int
  /// The guest's CR0, CR4, EFER, RFLAGS, PKRU, PKRS and PCID.
  let cr0: UInt64
  let cr4: UInt64
  let efer: UInt64
  let rflags: UInt64
  let pkru: UInt64
  let pkrs: UInt64
  let pcid: UInt64
  /// The nested configuration.
  let nested: NestedSpec
  /// The host's physical-address width: the nested tables' (N), or MAXPHYADDR without nesting.
  let hostAddressBits: Int

  /// The nested levels: 4, 5, or 0 without nested paging.
  var nestedLevels: Int { nested.levels }
  /// 2^MAXPHYADDR: guest physical addresses lie below.
  var guestPhysicalLimit: UInt64 { 1 << UInt64(processor.physicalAddressBits) }
  /// 2^N: host physical addresses lie below.
  var hostPhysicalLimit: UInt64 { 1 << UInt64(hostAddressBits) }
  /// Whether the guest's EFER.NXE is set, so guest entries may carry XD.
  var guestNoExecute: Bool { efer & ControlFlags.executeDisableEnable != 0 }

  /// Resolves and checks the spec's machine; errors name the field that disagrees.
  init(_ spec: Spec) throws(FormatError) {
    let file = spec.file
    let guest = spec.guest
    func fail(_ field: String, _ message: String) -> FormatError {
      guest.origins[field].error(message, file: file)
    }

    // The vendor follows the nested kind unless given, and must agree with it.
    var vendor = spec.processor.vendor ?? .intel
    switch spec.nested {
    case .none:
      break
    case .ept:
      if vendor == .amd {
        throw spec.origin("processor").error(
          "EPT is Intel's; processor.vendor is amd", file: file)
      }
    case .npt:
      if spec.processor.vendor == .intel {
        throw spec.origin("processor").error(
          "NPT is AMD's; processor.vendor is intel", file: file)
      }
      vendor = .amd
    }
    processor = Processor(
      vendor: vendor, physicalAddressBits: spec.processor.physicalAddressBits,
      gigabytePages: spec.processor.gigabytePages)

    // The guest's registers: given, or the usual ones for the paging mode.
    guestLevels = guest.paging.levels
    let paging = guest.paging != .off
    cr0 = guest.cr0 ?? (paging ? 0x8001_0011 : 0x11)
    cr4 =
      guest.cr4
      ?? (guest.paging == .fiveLevel
        ? ControlFlags.physicalAddressExtension | ControlFlags.fiveLevel
        : paging ? ControlFlags.physicalAddressExtension : 0)
    efer =
      guest.efer
      ?? (paging
        ? ControlFlags.longModeEnable | ControlFlags.longModeActive
          | ControlFlags.executeDisableEnable
        : 0)
    rflags = guest.rflags
    pkru = guest.pkru
    pkrs = guest.pkrs
    pcid = guest.pcid
    let mode = guest.paging.rawValue
    if paging {
      guard cr0 & ControlFlags.paging != 0 else {
        throw fail("cr0", "\(mode) paging needs CR0.PG (add PG, or write paging: off)")
      }
      guard cr4 & ControlFlags.physicalAddressExtension != 0 else {
        throw fail("cr4", "\(mode) paging needs CR4.PAE (32-bit paging is out of scope)")
      }
      guard efer & ControlFlags.longModeActive != 0 && efer & ControlFlags.longModeEnable != 0
      else {
        throw fail("efer", "\(mode) paging needs EFER.LME and EFER.LMA (long mode)")
      }
      let fiveLevel = cr4 & ControlFlags.fiveLevel != 0
      if fiveLevel != (guest.paging == .fiveLevel) {
        throw fail(
          "cr4",
          fiveLevel
            ? "CR4.LA57 makes 5-level paging, but guest.paging is 4-level"
            : "5-level paging needs CR4.LA57")
      }
    } else {
      guard cr0 & ControlFlags.paging == 0 else {
        throw fail("cr0", "CR0.PG is set, but guest.paging is off")
      }
      guard efer & ControlFlags.longModeActive == 0 else {
        throw fail("efer", "EFER.LMA needs paging on; guest.paging is off")
      }
    }
    if pcid != 0 && cr4 & ControlFlags.processContextIdentifiers == 0 {
      throw fail("pcid", "a PCID needs CR4.PCIDE; without it CR3 bits 11:0 are not a PCID")
    }

    nested = spec.nested
    switch spec.nested {
    case .none: hostAddressBits = spec.processor.physicalAddressBits
    case .ept(let ept): hostAddressBits = ept.physicalAddressBits
    case .npt(let npt): hostAddressBits = npt.physicalAddressBits
    }
  }

  /// The guest's registers with its root table at guest physical `root`.
  func guestRegisters(root: UInt64) -> GuestRegisters {
    GuestRegisters(
      cr0: cr0, cr3: root | pcid, cr4: cr4, efer: efer, rflags: rflags, pkru: pkru, pkrs: pkrs)
  }

  /// The nested configuration with its root table at host physical `root`.
  func nestedPaging(root: UInt64) -> NestedPaging {
    switch nested {
    case .none:
      return .none
    case .ept(let ept):
      let eptp =
        root | (ept.accessedDirty ? 1 << 6 : 0) | UInt64(ept.levels - 1) << 3
        | ept.pagingStructureType.encoding
      return .ept(
        ExtendedPageTables(
          eptp: eptp, physicalAddressBits: ept.physicalAddressBits, executeOnly: ept.executeOnly,
          gigabytePages: ept.gigabytePages, modeBasedExecute: ept.modeBasedExecute))
    case .npt(let npt):
      return .npt(
        NestedPageTables(
          nCR3: root, hostCR4: npt.hostCR4, hostEFER: npt.hostEFER,
          physicalAddressBits: npt.physicalAddressBits))
    }
  }
}
