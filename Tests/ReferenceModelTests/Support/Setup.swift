import Machine
import ReferenceModel
import Workloads

/// The guest's control bits, by name, turned into raw registers (SEMANTICS §1.1).
struct Controls {
  var levels = 4
  var wp = true
  var smep = false
  var smap = false
  var ac = false
  var nxe = true
  var pke = false
  var pks = false
  var pkru: UInt64 = 0
  var pkrs: UInt64 = 0
  /// CR0.PG; without it the guest runs on guest physical addresses (SEMANTICS §4.1).
  var paging = true

  func registers(cr3: UInt64) -> GuestRegisters {
    guard paging else {
      return GuestRegisters(cr0: CR0.pe | (wp ? CR0.wp : 0), cr3: 0, cr4: 0, efer: 0)
    }
    var cr4 = CR4.pae
    if levels == 5 { cr4 |= CR4.la57 }
    if smep { cr4 |= CR4.smep }
    if smap { cr4 |= CR4.smap }
    if pke { cr4 |= CR4.pke }
    if pks { cr4 |= CR4.pks }
    return GuestRegisters(
      cr0: CR0.pg | CR0.pe | (wp ? CR0.wp : 0), cr3: cr3, cr4: cr4,
      efer: EFER.lme | EFER.lma | (nxe ? EFER.nxe : 0), rflags: 0x2 | (ac ? rflagsAC : 0),
      pkru: pkru, pkrs: pkrs)
  }
}

/// A machine under construction: guest tables in guest physical space, and for two-dimensional
/// set-ups EPT or NPT tables in host physical memory. Guest physical `x` is backed by host
/// physical `x + hostOffset` wherever the nested tables map it (0 without nested paging).
struct Setup {
  enum Nested {
    case none
    case ept(
      accessedDirty: Bool, executeOnly: Bool, gigabytePages: Bool, modeBasedExecute: Bool,
      addressBits: Int)
    case npt(hostEFER: UInt64, addressBits: Int)
  }

  var processor = Processor()
  var controls = Controls()
  var guest: TableBuilder
  var host: TableBuilder?
  var nested: Nested
  /// The nested leaf given to every guest table the test did not map itself.
  var tableLeaf: UInt64
  private var nestedRanges: [(start: UInt64, size: UInt64)] = []

  /// Host physical = guest physical + this, for nested set-ups.
  static let nestedOffset: UInt64 = 0x4000_0000

  var hostOffset: UInt64 { host == nil ? 0 : Self.nestedOffset }

  /// A guest with no nested paging; its tables live at guest physical = host physical 0x1000 up.
  static func native(levels: Int = 4, directory: UInt64 = X86.prw | X86.a) -> Setup {
    var s = Setup(
      guest: TableBuilder(levels: levels, tableArea: 0x1000, directoryBits: directory),
      host: nil, nested: .none, tableLeaf: 0)
    s.controls.levels = levels
    return s
  }

  /// A guest over EPT: EPT tables at host physical 0x1000 up, guest tables at guest physical
  /// 0x1000 up (host 0x4000_1000 up), every guest table mapped R|W|X, write-back.
  static func ept(
    guestLevels: Int = 4, eptLevels: Int = 4, accessedDirty: Bool = false,
    executeOnly: Bool = true, gigabytePages: Bool = true, modeBasedExecute: Bool = false,
    addressBits: Int = 46, guestDirectory: UInt64 = X86.prw | X86.a,
    eptDirectory: UInt64 = EPTE.rwx
  ) -> Setup {
    var s = Setup(
      guest: TableBuilder(levels: guestLevels, tableArea: 0x1000, directoryBits: guestDirectory),
      host: TableBuilder(levels: eptLevels, tableArea: 0x1000, directoryBits: eptDirectory),
      nested: .ept(
        accessedDirty: accessedDirty, executeOnly: executeOnly, gigabytePages: gigabytePages,
        modeBasedExecute: modeBasedExecute, addressBits: addressBits),
      tableLeaf: EPTE.rwx | EPTE.wb)
    s.controls.levels = guestLevels
    return s
  }

  /// A guest over AMD NPT in a host paging mode of `nptLevels` levels; NPT tables at host
  /// physical 0x1000 up, every guest table mapped P|R/W|U/S.
  static func npt(
    guestLevels: Int = 4, nptLevels: Int = 4, hostNXE: Bool = true, addressBits: Int = 48,
    guestDirectory: UInt64 = X86.prw | X86.a, nptDirectory: UInt64 = X86.prw
  ) -> Setup {
    var s = Setup(
      guest: TableBuilder(levels: guestLevels, tableArea: 0x1000, directoryBits: guestDirectory),
      host: TableBuilder(levels: nptLevels, tableArea: 0x1000, directoryBits: nptDirectory),
      nested: .npt(
        hostEFER: EFER.lme | EFER.lma | (hostNXE ? EFER.nxe : 0), addressBits: addressBits),
      tableLeaf: X86.prw)
    s.processor.vendor = .amd
    s.controls.levels = guestLevels
    return s
  }

  /// Maps guest virtual `gva` to guest physical `gpa` with a leaf at `level` carrying `bits`.
  mutating func map(_ gva: UInt64, to gpa: UInt64, level: Int = 1, bits: UInt64) {
    guest.map(gva, to: gpa, pageLevel: level, bits: bits)
  }

  /// Maps guest physical `gpa` (aligned to the page size of `level`) to `gpa + hostOffset` in
  /// the nested tables with a leaf carrying `bits`.
  mutating func mapNested(_ gpa: UInt64, level: Int = 1, bits: UInt64) {
    guard var h = host else { preconditionFailure("no nested tables in this set-up") }
    h.map(gpa, to: gpa + Self.nestedOffset, pageLevel: level, bits: bits)
    host = h
    nestedRanges.append((gpa, TableBuilder.pageSize(level: level)))
  }

  /// Writes a raw nested entry (for malformed or odd entries).
  mutating func setNestedEntry(of gpa: UInt64, level: Int, to value: UInt64) {
    guard var h = host else { preconditionFailure("no nested tables in this set-up") }
    h.setEntry(of: gpa, level: level, to: value)
    host = h
  }

  /// Replaces every bit of the guest entry for `gva` at `level` but its address field
  /// (bits 51:12) with `bits`.
  mutating func setGuestBits(of gva: UInt64, level: Int, to bits: UInt64) {
    let address = guest.entry(of: gva, level: level) & TableBuilder.addressMask
    guest.setEntry(of: gva, level: level, to: address | bits)
  }

  /// Replaces every bit of the nested entry for `gpa` at `level` but its address field.
  mutating func setNestedBits(of gpa: UInt64, level: Int, to bits: UInt64) {
    guard var h = host else { preconditionFailure("no nested tables in this set-up") }
    let address = h.entry(of: gpa, level: level) & TableBuilder.addressMask
    h.setEntry(of: gpa, level: level, to: address | bits)
    host = h
  }

  /// The guest entry for `gva` at `level`, as built.
  func guestValue(of gva: UInt64, level: Int) -> UInt64 { guest.entry(of: gva, level: level) }

  /// The host physical address backing guest physical `gpa`.
  func hostPhysical(_ gpa: UInt64) -> UInt64 { gpa + hostOffset }

  /// The guest physical address of the guest entry for `gva` at `level`.
  func guestEntry(of gva: UInt64, level: Int) -> UInt64 {
    var copy = guest
    return copy.entryAddress(of: gva, level: level, creating: false)
  }

  /// The assembled snapshot.
  func machine() -> MachineState {
    var memory = PhysicalMemory()
    var nestedPaging = NestedPaging.none
    if var h = host {
      for table in guest.tables
      where !nestedRanges.contains(where: { table >= $0.start && table - $0.start < $0.size }) {
        h.map(table, to: table + Self.nestedOffset, bits: tableLeaf)
      }
      h.place(into: &memory)
      switch nested {
      case .none: break
      case .ept(let ad, let executeOnly, let gigabytePages, let mbec, let bits):
        let eptp = h.root | (ad ? 1 << 6 : 0) | UInt64(h.levels - 1) << 3 | 6
        nestedPaging = .ept(
          ExtendedPageTables(
            eptp: eptp, physicalAddressBits: bits, executeOnly: executeOnly,
            gigabytePages: gigabytePages, modeBasedExecute: mbec))
      case .npt(let efer, let bits):
        nestedPaging = .npt(
          NestedPageTables(
            nCR3: h.root, hostCR4: CR4.pae | (h.levels == 5 ? CR4.la57 : 0), hostEFER: efer,
            physicalAddressBits: bits))
      }
    }
    guest.place(into: &memory) { $0 + hostOffset }
    return MachineState(
      processor: processor, guest: controls.registers(cr3: guest.root), nested: nestedPaging,
      memory: memory)
  }

  /// The reference model over the snapshot.
  func model() throws -> ConcreteModel { try ConcreteModel(machine()) }

  /// One translation.
  func translate(
    _ gva: UInt64, _ access: Access, choices: Choices<Concrete> = .kvm, recording: Bool = false
  ) throws -> Translation<Concrete> {
    try model().translate(gva, access, choices: choices, recording: recording)
  }
}

extension Setup {
  /// A native 4-level guest mapping `gva` to `dataGPA` with a 4-KiB page whose PML4E, PDPTE,
  /// PDE and PTE carry exactly `entries` (top-down; address fields are filled in).
  static func path(_ entries: [UInt64], controls: Controls = Controls()) -> Setup {
    precondition(entries.count == 4, "PML4E, PDPTE, PDE, PTE")
    var s = Setup.native()
    s.controls = controls
    s.map(gva, to: dataGPA, bits: X86.prw)
    for (i, bits) in entries.enumerated() { s.setGuestBits(of: gva, level: 4 - i, to: bits) }
    return s
  }
}

/// The linear address most tests translate: index 1 in the PML4, 2 in the PDPT, 3 in the PD,
/// 4 in the PT, offset 0x567 (index 0 in a PML5).
let gva: UInt64 = 1 << 39 | 2 << 30 | 3 << 21 | 4 << 12 | 0x567

/// The guest physical frame most tests map `gva` to.
let dataGPA: UInt64 = 0x0123_4000

extension Access {
  /// Supervisor-mode (CPL 0, explicit) accesses.
  static let read = Access(.read)
  static let write = Access(.write)
  static let fetch = Access(.fetch)
  /// User-mode (CPL 3, explicit) accesses.
  static let userRead = Access(.read, user: true)
  static let userWrite = Access(.write, user: true)
  static let userFetch = Access(.fetch, user: true)
  /// Implicit supervisor accesses to system structures, at any CPL.
  static let implicitRead = Access(.read, implicit: true)
  static let implicitWrite = Access(.write, implicit: true)
}

extension Translation where D == Concrete {
  /// The host physical address, when the access translated.
  var hostPhysical: UInt64? {
    if case .translated(let hpa) = outcome { return hpa }
    return nil
  }

  /// The page-fault error code, when the access raised #PF.
  var errorCode: UInt64? {
    if case .pageFault(let code, _) = outcome { return code }
    return nil
  }

  /// The exit qualification, when the access caused an EPT violation.
  var qualification: UInt64? {
    if case .eptViolation(let q, _, _) = outcome { return q }
    return nil
  }

  /// EXITINFO1, when the access caused #NPF.
  var exitInfo1: UInt64? {
    if case .nestedPageFault(let info1, _) = outcome { return info1 }
    return nil
  }

  /// The A/D writes that happen, as (host physical address, bits set).
  var writes: [Write] { performedUpdates.map { Write(address: $0.address, bits: $0.bits) } }
}

/// One accessed/dirty write: the bits ORed into the word at a host physical address.
struct Write: Hashable, CustomStringConvertible {
  var address: UInt64
  var bits: UInt64
  var description: String { "\(hex(address)) |= \(hex(bits))" }
}

/// The addresses of the entries a radix walk for `address` reads, top-down: 4-KiB tables of
/// 512 entries, nine index bits a level, the next table in bits 51:12, bit 7 ending the walk at
/// levels 2 and 3. A test-side helper for locating entries, independent of the model; it
/// assumes every entry on the way is present.
func radixPath(_ memory: PhysicalMemory, root: UInt64, levels: Int, address: UInt64) -> [UInt64] {
  var table = root
  var path: [UInt64] = []
  for level in stride(from: levels, through: 1, by: -1) {
    let slot = table + 8 * ((address >> UInt64(12 + 9 * (level - 1))) & 0x1FF)
    path.append(slot)
    let entry = memory[slot]
    if level <= 3 && level >= 2 && entry & (1 << 7) != 0 { break }
    table = entry & 0x000F_FFFF_FFFF_F000
  }
  return path
}
