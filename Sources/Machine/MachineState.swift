/// Everything a translation depends on: the processor's capabilities, the guest's control
/// registers, the nested paging configuration, an optional shadow root, and host physical
/// memory holding every table.
///
/// This is the state snapshot of DESIGN.md. Registers are kept raw, as a hypervisor would dump
/// them; each implementation decodes them itself, so a decoding bug cannot hide in shared code.
/// The JSON form is described in docs/state-format.md and read by ``MachineState/load(json:file:)``.
public struct MachineState: Hashable, Sendable {
  /// Processor capabilities that shape the guest's paging.
  public var processor: Processor
  /// The guest's control registers.
  public var guest: GuestRegisters
  /// How guest physical addresses become host physical addresses.
  public var nested: NestedPaging
  /// The shadow tables a hypervisor keeps instead of nested paging, if any.
  public var shadow: ShadowPaging?
  /// Host physical memory: guest tables (at the host addresses backing them), nested tables,
  /// shadow tables.
  public var memory: PhysicalMemory
  /// The host physical ranges assigned to the guest: every translation that succeeds, nested
  /// or shadow, must land inside one of them (the isolation property). Empty when unknown.
  public var hostRanges: [HostRange]

  /// Makes a state; the defaults describe a guest with no nested paging and empty memory.
  public init(
    processor: Processor = Processor(),
    guest: GuestRegisters,
    nested: NestedPaging = .none,
    shadow: ShadowPaging? = nil,
    memory: PhysicalMemory = PhysicalMemory(),
    hostRanges: [HostRange] = []
  ) {
    self.processor = processor
    self.guest = guest
    self.nested = nested
    self.shadow = shadow
    self.memory = memory
    self.hostRanges = hostRanges
  }
}

/// The processor vendor, where the architectures differ (SEMANTICS §1.3: AMD reserves bit 8 of
/// PML4 and PML5 entries).
public enum Vendor: String, CaseIterable, Hashable, Sendable {
  /// Intel: EPT for nested paging.
  case intel
  /// AMD: NPT for nested paging.
  case amd
}

/// The processor capabilities the guest's paging depends on.
public struct Processor: Hashable, Sendable {
  /// The vendor.
  public var vendor: Vendor
  /// MAXPHYADDR as the guest sees it (CPUID.80000008H:EAX[7:0]): bits from here to 51 are
  /// reserved in every present guest paging entry. Between 32 and 52.
  public var physicalAddressBits: Int
  /// Whether 1-GiB pages are supported (CPUID.80000001H:EDX[26]); if not, PS in a PDPTE is a
  /// reserved bit.
  public var gigabytePages: Bool

  /// Makes a processor description; the defaults are an Intel core with 46 physical address
  /// bits and 1-GiB pages.
  public init(vendor: Vendor = .intel, physicalAddressBits: Int = 46, gigabytePages: Bool = true) {
    self.vendor = vendor
    self.physicalAddressBits = physicalAddressBits
    self.gigabytePages = gigabytePages
  }
}

/// The guest's control registers, raw.
public struct GuestRegisters: Hashable, Sendable {
  /// CR0: PG (bit 31), WP (bit 16).
  public var cr0: UInt64
  /// CR3: the root table's guest physical address in bits [M-1:12].
  public var cr3: UInt64
  /// CR4: PAE (5), PGE (7), LA57 (12), PCIDE (17), SMEP (20), SMAP (21), PKE (22), PKS (24).
  public var cr4: UInt64
  /// IA32_EFER: LME (8), LMA (10), NXE (11).
  public var efer: UInt64
  /// RFLAGS: AC (bit 18) matters to SMAP.
  public var rflags: UInt64
  /// PKRU: AD_k = bit 2k, WD_k = bit 2k+1, for user-mode addresses.
  public var pkru: UInt64
  /// IA32_PKRS: the same layout, for supervisor-mode addresses.
  public var pkrs: UInt64

  /// Makes a register set; RFLAGS defaults to its reset value 0x2, the key registers to zero.
  public init(
    cr0: UInt64, cr3: UInt64, cr4: UInt64, efer: UInt64,
    rflags: UInt64 = 0x2, pkru: UInt64 = 0, pkrs: UInt64 = 0
  ) {
    self.cr0 = cr0
    self.cr3 = cr3
    self.cr4 = cr4
    self.efer = efer
    self.rflags = rflags
    self.pkru = pkru
    self.pkrs = pkrs
  }
}

/// How guest physical addresses are translated to host physical addresses.
public enum NestedPaging: Hashable, Sendable {
  /// No nested paging: guest physical addresses are host physical addresses.
  case none
  /// Intel EPT.
  case ept(ExtendedPageTables)
  /// AMD NPT.
  case npt(NestedPageTables)
}

/// Intel EPT as configured in the VMCS (SEMANTICS §2.1).
public struct ExtendedPageTables: Hashable, Sendable {
  /// The EPT pointer: memory type (2:0), walk length − 1 (5:3), A/D enable (6), root (N-1:12).
  public var eptp: UInt64
  /// N, the host's physical-address width: EPT entry bits from here to 51 are reserved.
  public var physicalAddressBits: Int
  /// Whether execute-only translations (XWR = 100) are supported
  /// (IA32_VMX_EPT_VPID_CAP bit 0); if not, they are misconfigurations.
  public var executeOnly: Bool
  /// Whether 1-GiB EPT pages are supported; if not, bit 7 of an EPT PDPTE is reserved.
  public var gigabytePages: Bool
  /// Whether mode-based execute control is enabled: bit 2 then grants execution to
  /// supervisor-mode linear addresses and bit 10 to user-mode ones.
  public var modeBasedExecute: Bool

  /// Makes an EPT configuration; by default N = 46, execute-only and 1-GiB pages supported,
  /// mode-based execute control off.
  public init(
    eptp: UInt64, physicalAddressBits: Int = 46, executeOnly: Bool = true,
    gigabytePages: Bool = true, modeBasedExecute: Bool = false
  ) {
    self.eptp = eptp
    self.physicalAddressBits = physicalAddressBits
    self.executeOnly = executeOnly
    self.gigabytePages = gigabytePages
    self.modeBasedExecute = modeBasedExecute
  }
}

/// AMD NPT as set up by VMRUN (SEMANTICS §3.1): the nested walk uses the host's paging mode.
public struct NestedPageTables: Hashable, Sendable {
  /// N_CR3: the host physical address of the nested root table.
  public var nCR3: UInt64
  /// The host's CR4 at VMRUN; LA57 (bit 12) selects 5-level nested tables.
  public var hostCR4: UInt64
  /// The host's EFER at VMRUN; NXE (bit 11) makes bit 63 of nested entries XD.
  public var hostEFER: UInt64
  /// The host's physical-address width: nested entry bits from here to 51 are reserved.
  public var physicalAddressBits: Int

  /// Makes an NPT configuration; by default a 4-level host with NXE and 48 physical bits.
  public init(
    nCR3: UInt64, hostCR4: UInt64 = 0x20, hostEFER: UInt64 = 0xD00, physicalAddressBits: Int = 48
  ) {
    self.nCR3 = nCR3
    self.hostCR4 = hostCR4
    self.hostEFER = hostEFER
    self.physicalAddressBits = physicalAddressBits
  }
}

/// Shadow paging: the tables a hypervisor builds for the hardware to walk with guest virtual
/// addresses, their leaves holding host physical frames (SEMANTICS §5).
///
/// The hardware walks them under the control registers the hypervisor loads while the guest
/// runs, which differ from the guest's own: KVM forces CR0.WP and EFER.NXE (§5.2 step 6).
public struct ShadowPaging: Hashable, Sendable {
  /// The shadow root's host physical address, as loaded into the hardware CR3.
  public var cr3: UInt64
  /// The hardware CR0 while the shadow is live.
  public var cr0: UInt64
  /// The hardware CR4 while the shadow is live.
  public var cr4: UInt64
  /// The hardware EFER while the shadow is live.
  public var efer: UInt64
  /// Guest frame numbers (guest physical address >> 12) of level-1 guest tables that are out of
  /// sync (KVM `unsync`, Xen OOS): writable by the guest, their shadows allowed to be stale
  /// until the guest flushes (SEMANTICS §5.5 I5, I8).
  public var unsyncTables: [UInt64]

  /// Makes a shadow configuration; the control registers default to the guest's with CR0.WP
  /// and EFER.NXE forced on, as KVM loads them.
  public init(
    cr3: UInt64, guest: GuestRegisters, cr0: UInt64? = nil, cr4: UInt64? = nil,
    efer: UInt64? = nil, unsyncTables: [UInt64] = []
  ) {
    self.cr3 = cr3
    self.cr0 = cr0 ?? (guest.cr0 | 1 << 16)
    self.cr4 = cr4 ?? guest.cr4
    self.efer = efer ?? (guest.efer | 1 << 11)
    self.unsyncTables = unsyncTables
  }
}

/// A range of host physical addresses, `base ..< base + size`.
public struct HostRange: Hashable, Sendable, CustomStringConvertible {
  /// The first address.
  public var base: UInt64
  /// The number of bytes.
  public var size: UInt64

  /// Makes a range.
  public init(base: UInt64, size: UInt64) {
    self.base = base
    self.size = size
  }

  /// Whether `address` lies in the range.
  public func contains(_ address: UInt64) -> Bool {
    address >= base && address - base < size
  }

  /// `[base, base+size)` in hexadecimal.
  public var description: String { "[\(hex(base)), \(hex(base &+ size)))" }
}
