import Foundation
import Machine
import Workloads

/// The example states under examples/states/, defined here once. `examplesAreCurrent` (in
/// ExampleStateTests.swift) requires the committed files to be exactly what these definitions
/// write; run the tests with `NESTCHECK_WRITE_EXAMPLES=1` to rewrite them after a change.
///
/// Every machine maps the same guest virtual pages (``ExampleLayout``), so the same `--gva`
/// shows the same situation over every nested kind.
enum ExampleStates {
  /// Every example: file name (under examples/states/) and contents.
  static var all: [(name: String, json: JSON)] {
    [
      ("ept-4level.json", ept(guestLevels: 4, eptLevels: 4, accessedDirty: false)),
      ("ept-4level-ad.json", ept(guestLevels: 4, eptLevels: 4, accessedDirty: true)),
      ("ept-5level.json", ept(guestLevels: 5, eptLevels: 5, accessedDirty: false)),
      ("npt-4level.json", npt()),
      ("native-4level.json", native()),
    ]
  }

  /// The directory holding the examples: examples/states/ at the package root.
  static var directory: URL {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
      .deletingLastPathComponent().appendingPathComponent("examples/states")
  }

  /// The path of an example, for running commands on it.
  static func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

  // MARK: The guest

  /// Where the guest's pages are. Guest physical: tables from 0x1000, 4-KiB data pages from
  /// 0x100000, one 2-MiB page at 0x200000.
  enum ExampleLayout {
    /// The first guest virtual page.
    static let base: UInt64 = 0x7F00_0000_0000
    /// Page 0: user, writable (A set, D clear).
    static let userData: UInt64 = base
    /// Page 1: user, writable, A and D clear — the README's address, at offset 0x234.
    static let userClean: UInt64 = base + 0x1000
    /// Page 2: user, read-only.
    static let userReadOnly: UInt64 = base + 0x2000
    /// Page 3: supervisor, writable.
    static let supervisor: UInt64 = base + 0x3000
    /// Page 4: user, writable, execute-disabled.
    static let executeDisabled: UInt64 = base + 0x4000
    /// Page 5: not mapped (the PTE is zero).
    static let unmapped: UInt64 = base + 0x5000
    /// Page 6: user, writable; the nested tables map its guest frame read/execute only.
    static let nestedReadOnly: UInt64 = base + 0x6000
    /// Page 7: user, writable; the nested tables do not map its guest frame.
    static let nestedUnmapped: UInt64 = base + 0x7000
    /// Page 8: user, writable; its EPT leaf is write-only (a misconfiguration).
    static let nestedMisconfigured: UInt64 = base + 0x8000
    /// A 2-MiB page at base + 4 MiB, backed by a 2-MiB nested page.
    static let largePage: UInt64 = base + 0x40_0000
    /// Base + 2 MiB: its PDE has reserved bit 51 set.
    static let reservedBit: UInt64 = base + 0x20_0000
    /// Base + 6 MiB: the page table is mapped read-only by the nested tables; its PTEs have A
    /// clear, so the guest's A write needs a nested write (EPT without A/D flags: checked only
    /// then). The first page's frame is mapped; the second's is not.
    static let readOnlyTable: UInt64 = base + 0x60_0000
    static let readOnlyTableUnmappedFrame: UInt64 = base + 0x60_1000
    /// Base + 1 GiB: its PDPTE points to a page directory whose guest frame the nested tables
    /// do not map.
    static let tableUnmapped: UInt64 = base + 0x4000_0000
  }

  /// Guest physical addresses of the data pages: page i of the base at 0x100000 + i·4 KiB.
  static func dataFrame(_ page: UInt64) -> UInt64 { 0x10_0000 + page << 12 }

  /// The guest tables and the guest frames the nested tables map, and how.
  struct Guest {
    var tables: TableBuilder
    /// Guest frames the nested tables map with full rights (4 KiB each).
    var mapped: [UInt64] = []
    /// Guest frames mapped read/execute only.
    var readOnly: [UInt64] = []
    /// A guest frame whose EPT leaf is write-only.
    var misconfigured: [UInt64] = []
    /// 2-MiB guest frames, mapped with 2-MiB nested pages.
    var large: [UInt64] = []
  }

  static func guest(levels: Int) -> Guest {
    typealias L = ExampleLayout
    let directory = EntryBits.directory | EntryBits.accessed
    var t = TableBuilder(levels: levels, tableArea: 0x1000, directoryBits: directory)
    let user = EntryBits.directory | EntryBits.accessed
    t.map(L.userData, to: dataFrame(0), bits: user)
    t.map(L.userClean, to: dataFrame(1), bits: EntryBits.directory)
    t.map(
      L.userReadOnly, to: dataFrame(2),
      bits: EntryBits.present | EntryBits.user | EntryBits.accessed)
    t.map(
      L.supervisor, to: dataFrame(3),
      bits: EntryBits.present | EntryBits.writable | EntryBits.accessed)
    t.map(L.executeDisabled, to: dataFrame(4), bits: user | EntryBits.executeDisable)
    t.map(L.nestedReadOnly, to: dataFrame(6), bits: user)
    t.map(L.nestedUnmapped, to: dataFrame(7), bits: user)
    t.map(L.nestedMisconfigured, to: dataFrame(8), bits: user)
    t.map(L.largePage, to: 0x20_0000, pageLevel: 2, bits: user)
    // A page table of its own, which the nested tables will map read-only.
    t.map(L.readOnlyTable, to: dataFrame(9), bits: EntryBits.directory)
    t.map(L.readOnlyTableUnmappedFrame, to: dataFrame(10), bits: EntryBits.directory)
    let readOnlyTable = t.entry(of: L.readOnlyTable, level: 2) & TableBuilder.addressMask
    // A PDE with reserved bit 51 set (MAXPHYADDR is 46), pointing at an empty table.
    t.setEntry(of: L.reservedBit, level: 2, to: 1 << 51 | 0xF000 | directory)
    // A PDPTE naming a page directory the nested tables do not map.
    t.setEntry(of: L.tableUnmapped, level: 3, to: 0xE000 | directory)

    var g = Guest(tables: t)
    g.mapped = t.tables.filter { $0 != readOnlyTable } + [0, 1, 2, 3, 4, 9].map(dataFrame)
    g.readOnly = [readOnlyTable, dataFrame(6)]
    g.misconfigured = [dataFrame(8)]
    g.large = [0x20_0000]
    return g
  }

  /// Host physical = guest physical + 4 GiB for every guest frame.
  static let hostOffset: UInt64 = 1 << 32

  static func registers(levels: Int, cr3: UInt64) -> GuestRegisters {
    GuestRegisters(
      cr0: GuestSetup.cr0, cr3: cr3, cr4: GuestSetup.cr4(levels: levels), efer: GuestSetup.efer)
  }

  // MARK: The machines

  static func ept(guestLevels: Int, eptLevels: Int, accessedDirty: Bool) -> JSON {
    let g = guest(levels: guestLevels)
    let all = EntryBits.eptAll | EntryBits.eptWriteBack
    var ept = TableBuilder(levels: eptLevels, tableArea: 0x1000, directoryBits: EntryBits.eptAll)
    for frame in g.mapped { ept.map(frame, to: frame + hostOffset, bits: all) }
    for frame in g.readOnly {
      ept.map(
        frame, to: frame + hostOffset,
        bits: EntryBits.eptRead | EntryBits.eptExecute | EntryBits.eptWriteBack)
    }
    for frame in g.misconfigured {
      ept.map(frame, to: frame + hostOffset, bits: EntryBits.eptWrite | EntryBits.eptWriteBack)
    }
    for frame in g.large { ept.map(frame, to: frame + hostOffset, pageLevel: 2, bits: all) }
    var memory = PhysicalMemory()
    ept.place(into: &memory)
    g.tables.place(into: &memory) { $0 + hostOffset }
    let state = MachineState(
      guest: registers(levels: guestLevels, cr3: g.tables.root),
      nested: .ept(
        ExtendedPageTables(
          eptp: GuestSetup.eptp(root: ept.root, levels: eptLevels, accessedDirty: accessedDirty))),
      memory: memory)
    let comment =
      "\(guestLevels)-level guest paging over \(eptLevels)-level EPT"
      + (accessedDirty ? " with accessed/dirty flags on (EPTP bit 6)" : "")
      + ". Guest tables from guest physical 0x1000, data pages from 0x100000; host physical ="
      + " guest physical + 4 GiB; EPT tables from host physical 0x1000. The pages at guest"
      + " virtual 0x7f0000000000 and beyond: see examples/states/README.md."
    return commented(state, comment)
  }

  static func npt() -> JSON {
    let g = guest(levels: 4)
    let directory = EntryBits.directory | EntryBits.accessed
    let all = EntryBits.directory | EntryBits.accessed
    var npt = TableBuilder(levels: 4, tableArea: 0x1000, directoryBits: directory)
    for frame in g.mapped + g.misconfigured {
      npt.map(frame, to: frame + hostOffset, bits: all)
    }
    for frame in g.readOnly {
      npt.map(frame, to: frame + hostOffset, bits: EntryBits.present | EntryBits.user)
    }
    for frame in g.large { npt.map(frame, to: frame + hostOffset, pageLevel: 2, bits: all) }
    var memory = PhysicalMemory()
    npt.place(into: &memory)
    g.tables.place(into: &memory) { $0 + hostOffset }
    let state = MachineState(
      processor: Processor(vendor: .amd, physicalAddressBits: 48),
      guest: registers(levels: 4, cr3: g.tables.root),
      nested: .npt(NestedPageTables(nCR3: npt.root)), memory: memory)
    let comment =
      "4-level guest paging over 4-level AMD NPT (host CR4 0x20, EFER 0xd00). Guest tables from"
      + " guest physical 0x1000, data pages from 0x100000; host physical = guest physical +"
      + " 4 GiB; NPT tables from host physical 0x1000. The pages at guest virtual"
      + " 0x7f0000000000 and beyond: see examples/states/README.md."
    return commented(state, comment)
  }

  static func native() -> JSON {
    let g = guest(levels: 4)
    var memory = PhysicalMemory()
    g.tables.place(into: &memory)
    let state = MachineState(guest: registers(levels: 4, cr3: g.tables.root), memory: memory)
    let comment =
      "4-level paging without nested paging: guest physical is host physical. Tables from"
      + " 0x1000, data pages from 0x100000. The pages at virtual 0x7f0000000000 and beyond: see"
      + " examples/states/README.md."
    return commented(state, comment)
  }

  /// The state's JSON with a `comment` after `version`.
  static func commented(_ state: MachineState, _ comment: String) -> JSON {
    guard case .object(var members) = state.json.value else { return state.json }
    members.insert((key: "comment", value: .string(comment)), at: 2)
    return .object(members)
  }
}
