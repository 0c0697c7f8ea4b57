import Machine

/// The structural part of a machine: what shapes a walk rather than flows through it — how many
/// levels each dimension has, its physical-address width, which large pages exist, the vendor.
///
/// Structure is concrete in both interpretations (a walk has a fixed number of levels); the
/// values that flow through the walk (registers, entries, addresses) live in ``ModelState`` as
/// domain values. The architecture is data: the walkers read levels, widths and large-page
/// levels from here and never hard-code a paging mode.
public struct Configuration: Hashable, Sendable {
  /// Guest paging levels: 0 when CR0.PG = 0, else 4 or 5.
  public var guestLevels: Int
  /// The guest's MAXPHYADDR.
  public var guestAddressBits: Int
  /// Whether the guest may use 1-GiB pages.
  public var guestGigabytePages: Bool
  /// The vendor: AMD reserves bit 8 of PML4 and PML5 entries.
  public var vendor: Vendor
  /// The nested dimension.
  public var nested: Nested

  /// The structure of the nested dimension.
  public enum Nested: Hashable, Sendable {
    /// No nested paging.
    case none
    /// Intel EPT with `levels` levels and host address width N.
    case ept(levels: Int, addressBits: Int, executeOnly: Bool, gigabytePages: Bool)
    /// AMD NPT with `levels` levels (the host's paging mode) and host address width.
    case npt(levels: Int, addressBits: Int)
  }

  /// Makes a configuration directly.
  public init(
    guestLevels: Int, guestAddressBits: Int = 46, guestGigabytePages: Bool = true,
    vendor: Vendor = .intel, nested: Nested = .none
  ) {
    self.guestLevels = guestLevels
    self.guestAddressBits = guestAddressBits
    self.guestGigabytePages = guestGigabytePages
    self.vendor = vendor
    self.nested = nested
  }

  /// The number of nested levels (0 without nested paging).
  public var nestedLevels: Int {
    switch nested {
    case .none: 0
    case .ept(let levels, _, _, _), .npt(let levels, _): levels
    }
  }

  /// Derives the structure of a snapshot, refusing what the model does not cover or the
  /// architecture does not allow; every error names the field at fault.
  public init(_ state: MachineState, file: String? = nil) throws(FormatError) {
    func fail(_ field: String, _ message: String) -> FormatError {
      FormatError(file: file, field: field, message: message)
    }
    let g = state.guest
    let paging = g.cr0 >> UInt64(RegisterBit.cr0Paging) & 1 == 1
    let pae = g.cr4 >> UInt64(RegisterBit.cr4PhysicalAddressExtension) & 1 == 1
    let longMode = g.efer >> UInt64(RegisterBit.eferLongModeActive) & 1 == 1
    let fiveLevel = g.cr4 >> UInt64(RegisterBit.cr4FiveLevel) & 1 == 1
    switch (paging, pae, longMode) {
    case (false, _, false): guestLevels = 0
    case (false, _, true):
      throw fail("guest.efer", "EFER.LMA is set but CR0.PG is clear; long mode needs paging")
    case (true, true, true): guestLevels = fiveLevel ? 5 : 4
    case (true, _, _):
      throw fail(
        "guest.cr0",
        "unsupported paging mode: 32-bit and PAE paging are out of scope "
          + "(4-level paging needs CR0.PG, CR4.PAE and EFER.LMA; add CR4.LA57 for 5-level)")
    }
    guestAddressBits = state.processor.physicalAddressBits
    guestGigabytePages = state.processor.gigabytePages
    vendor = state.processor.vendor
    if guestLevels > 0, g.cr3 & ~mask(width: guestAddressBits) != 0 {
      throw fail("guest.cr3", "bits above MAXPHYADDR (\(guestAddressBits)) are set")
    }

    switch state.nested {
    case .none:
      nested = .none
    case .ept(let e):
      guard vendor == .intel else {
        throw fail("nested.kind", "EPT is Intel's; processor.vendor is \(vendor.rawValue)")
      }
      let walkLength = Int(e.eptp >> 3 & 7) + 1
      guard walkLength == 4 || walkLength == 5 else {
        throw fail("nested.eptp", "page-walk length \(walkLength) (bits 5:3) is not 4 or 5")
      }
      let memoryType = e.eptp & 7
      guard memoryType == 0 || memoryType == 6 else {
        throw fail("nested.eptp", "memory type \(memoryType) (bits 2:0) is not UC (0) or WB (6)")
      }
      guard e.eptp & mask(11, 8) == 0, e.eptp >> UInt64(e.physicalAddressBits) == 0 else {
        throw fail("nested.eptp", "reserved bits (11:8 or 63:N) are set; VM entry would fail")
      }
      nested = .ept(
        levels: walkLength, addressBits: e.physicalAddressBits, executeOnly: e.executeOnly,
        gigabytePages: e.gigabytePages)
    case .npt(let n):
      guard vendor == .amd else {
        throw fail("nested.kind", "NPT is AMD's; processor.vendor is \(vendor.rawValue)")
      }
      guard n.nCR3 >> UInt64(n.physicalAddressBits) == 0 else {
        throw fail("nested.ncr3", "bits above the host's physical-address width are set")
      }
      let levels = n.hostCR4 >> UInt64(RegisterBit.cr4FiveLevel) & 1 == 1 ? 5 : 4
      nested = .npt(levels: levels, addressBits: n.physicalAddressBits)
    }
  }
}
