import FastMMU
import Machine
import Workloads

/// A small machine for a test to shape: a 4-level guest whose tables live at guest-physical
/// 0x1000 upward, over EPT, NPT or nothing. Every guest frame a test maps (tables included)
/// is backed at guest-physical + ``hostOffset``, with full nested rights unless a test
/// overrides them.
struct Scenario {
  enum Nested { case none, ept, npt }

  var nested: Nested
  var guest = TableBuilder(levels: 4, tableArea: 0x1000, directoryBits: EntryBits.directory)
  var cr0 = GuestSetup.cr0
  var cr4 = GuestSetup.cr4(levels: 4)
  var efer = GuestSetup.efer
  var rflags: UInt64 = 0x2
  var pkru: UInt64 = 0
  var vendor: Vendor = .intel
  /// EPTP bit 6.
  var eptAccessedDirty = false
  var modeBasedExecute = false
  /// The level of the nested leaves: 1 (4 KiB), 2 (2 MiB) or 3 (1 GiB).
  var nestedPageLevel = 1
  /// Guest-physical frames mapped by the guest's leaves.
  private(set) var dataFrames: [UInt64] = []
  /// Nested leaf bits by guest-physical page, replacing the full-rights default.
  var nestedBits: [UInt64: UInt64] = [:]

  /// Where the nested tables live in host memory.
  static let nestedTableArea: UInt64 = 0x2_0000_0000

  init(_ nested: Nested = .ept) { self.nested = nested }

  /// Host = guest-physical + this (1 GiB), or 0 without nesting.
  var hostOffset: UInt64 { nested == .none ? 0 : 0x4000_0000 }

  /// The host physical address backing `gpa`.
  func host(_ gpa: UInt64) -> UInt64 { gpa + hostOffset }

  /// Maps the page of `gva` to guest-physical `gpa` with a leaf at `level` carrying `bits`.
  /// The nested tables back every 4-KiB frame of a 4-KiB or 2-MiB page, and the first frame of
  /// a 1-GiB page (with 4-KiB nested pages; larger nested pages back it whole).
  mutating func map(_ gva: UInt64, to gpa: UInt64, bits: UInt64 = Bits.userData, level: Int = 1) {
    guest.map(gva, to: gpa, pageLevel: level, bits: bits)
    let size = level == 3 ? 0x1000 : TableBuilder.pageSize(level: level)
    dataFrames += stride(from: gpa, to: gpa + size, by: 0x1000)
  }

  /// Backs guest-physical frame `gpa` in the nested tables without mapping it in the guest.
  mutating func back(_ gpa: UInt64) { dataFrames.append(gpa) }

  /// The guest-physical address of the guest entry that maps `gva` at `level`.
  func entry(_ gva: UInt64, level: Int) -> UInt64 {
    var tables = guest
    return tables.entryAddress(of: gva, level: level, creating: false)
  }

  /// The snapshot.
  var state: MachineState {
    var memory = PhysicalMemory()
    guest.place(into: &memory) { $0 + hostOffset }
    let registers = GuestRegisters(
      cr0: cr0, cr3: guest.root, cr4: cr4, efer: efer, rflags: rflags, pkru: pkru)
    let processor = Processor(vendor: vendor)
    switch nested {
    case .none:
      return MachineState(processor: processor, guest: registers, memory: memory)
    case .ept:
      var tables = TableBuilder(
        levels: 4, tableArea: Self.nestedTableArea, directoryBits: EntryBits.eptAll)
      mapFrames(into: &tables, full: EntryBits.eptAll | EntryBits.eptWriteBack)
      tables.place(into: &memory)
      let eptp = GuestSetup.eptp(root: tables.root, accessedDirty: eptAccessedDirty)
      return MachineState(
        processor: processor, guest: registers,
        nested: .ept(ExtendedPageTables(eptp: eptp, modeBasedExecute: modeBasedExecute)),
        memory: memory)
    case .npt:
      var tables = TableBuilder(
        levels: 4, tableArea: Self.nestedTableArea, directoryBits: EntryBits.directory)
      mapFrames(into: &tables, full: EntryBits.directory)
      tables.place(into: &memory)
      return MachineState(
        processor: processor, guest: registers, nested: .npt(NestedPageTables(nCR3: tables.root)),
        memory: memory)
    }
  }

  /// The host address of the nested entry that maps `gpa` at `level`, in `memory` (tables as
  /// this scenario builds them, rooted at ``nestedTableArea``).
  static func nestedEntry(_ gpa: UInt64, level: Int, in memory: PhysicalMemory) -> UInt64 {
    var table = nestedTableArea
    for current in stride(from: 4, to: level, by: -1) {
      table =
        memory[table + 8 * TableBuilder.index(of: gpa, level: current)] & TableBuilder.addressMask
    }
    return table + 8 * TableBuilder.index(of: gpa, level: level)
  }

  /// Backs every guest table and data frame, at the nested page size.
  private func mapFrames(into tables: inout TableBuilder, full: UInt64) {
    let size = TableBuilder.pageSize(level: nestedPageLevel)
    var mapped = Set<UInt64>()
    for frame in guest.tables + dataFrames {
      let page = frame & ~(size - 1)
      guard mapped.insert(page).inserted else { continue }
      tables.map(
        page, to: host(page), pageLevel: nestedPageLevel, bits: nestedBits[page] ?? full)
    }
  }
}

/// Leaf bits by intent.
enum Bits {
  static let present = EntryBits.present
  /// P, R/W, U/S, A, D: a user page that is writable and already dirty.
  static let userData = EntryBits.directory | EntryBits.accessed | EntryBits.dirty
  /// P, R/W, A, D: a supervisor page.
  static let kernelData =
    EntryBits.present | EntryBits.writable | EntryBits.accessed
    | EntryBits.dirty
  /// P, U/S, A: a user page, read-only.
  static let userReadOnly = EntryBits.present | EntryBits.user | EntryBits.accessed
  /// EPT read + write-back, no write or execute.
  static let eptReadOnly = EntryBits.eptRead | EntryBits.eptWriteBack
  /// EPT read and execute, write-back.
  static let eptReadExecute = EntryBits.eptRead | EntryBits.eptExecute | EntryBits.eptWriteBack
}

/// A few guest-virtual and guest-physical addresses the tests share.
enum Layout {
  /// Pages in distinct TLB slots; `data` and `other` share a page-table index in two tables.
  static let code: UInt64 = 0x40_1000
  static let data: UInt64 = 0x60_2000
  static let other: UInt64 = 0x80_2000
  /// Each frame in its own 2-MiB region, apart from the guest tables' (below 2 MiB).
  static let dataFrame: UInt64 = 0x40_0000
  static let otherFrame: UInt64 = 0x60_0000
  static let spareFrame: UInt64 = 0x80_0000
}

extension VirtualMMU {
  /// Applies an operation and returns its result only.
  @discardableResult
  func run(_ operation: TraceOperation) -> TraceResult { apply(operation).result }

  /// The outcome of one access (`nil` if the result is not an outcome at all).
  func access(_ address: UInt64, _ access: Access = Access(.read)) -> Outcome? {
    apply(.access(linearAddress: address, access)).result.outcome
  }

  /// The word at a host physical address in the MMU's memory now.
  func hostWord(_ address: UInt64) -> UInt64 { snapshot().memory[address] }
}

extension TraceResult {
  /// The outcome of an access result.
  var outcome: Outcome? {
    if case .outcome(let outcome) = self { return outcome }
    return nil
  }
}
