import Machine
import Workloads

/// A start state for one fuzzing episode and what the generator knows of its layout
/// (docs/fuzzing.md, "start states"): a small guest whose linear addresses exercise every
/// paging shape the mode allows — 4-KiB pages sharing a table, a 2-MiB and a 1-GiB page, a page
/// table reached through two directory entries (aliasing), a root that maps itself, a guest
/// table mapped as data, a supervisor page in the upper half, holes at several levels — over a
/// nested dimension (EPT or NPT, 4 or 5 levels, or none) that maps every frame the guest uses
/// but one.
///
/// Deterministic: the same mode and seed give the same machine.
public struct FuzzMachine: Sendable {
  /// The state.
  public var state: MachineState
  /// Linear addresses worth accessing, page-aligned (large pages by their start).
  public var addresses: [UInt64]
  /// The size of the page each address starts (4 KiB, 2 MiB, 1 GiB), or 0 for holes.
  public var pageSizes: [UInt64]
  /// Guest-physical addresses of the guest's page tables.
  public var guestTables: [UInt64]
  /// Guest-physical addresses of 4-KiB data frames.
  public var dataFrames: [UInt64]
  /// A guest-physical frame the nested dimension does not map.
  public var unbackedFrame: UInt64
  /// Host physical address = guest-physical address + this, for every backed frame.
  public static let hostOffset: UInt64 = 0x1_0000_0000
  /// Where the nested tables live in host memory.
  public static let nestedTableArea: UInt64 = 0x8000_0000

  /// Builds the machine for `mode` from `seed`.
  public init(mode: OracleMode, seed: UInt64) {
    var random = SeededGenerator(seed: seed ^ 0x5EED_F022)
    func chance(_ percent: UInt64) -> Bool { UInt64.random(in: 0..<100, using: &random) < percent }
    func pick<T>(_ items: [T]) -> T { items[Int.random(in: 0..<items.count, using: &random)] }

    let paravirtual = mode == .paravirtual
    let nestedKind = pick(["ept", "ept", "npt", "npt", "none"])
    let vendor: Vendor =
      nestedKind == "ept" ? .intel : (nestedKind == "npt" ? .amd : pick([.intel, .amd]))
    let gigabyte = chance(80)
    let processor = Processor(
      vendor: vendor, physicalAddressBits: pick([39, 46, 46, 52]), gigabytePages: gigabyte)
    let pagingOff = !paravirtual && chance(8)
    let levels = pagingOff ? 0 : (chance(80) ? 4 : 5)
    let tableLevels = max(levels, 4)
    let nx = chance(80)
    let leafBits = EntryBits.present | EntryBits.accessed

    // Guest tables from GPA 0x1000; data frames from 2 MiB; the 2-MiB page at 4 MiB; the
    // 1-GiB page at 1 GiB.
    var guest = TableBuilder(
      levels: tableLevels, tableArea: 0x1000, directoryBits: EntryBits.directory)
    let topShift = UInt64(12 + 9 * (tableLevels - 1))
    let cluster =
      (UInt64.random(in: 1..<128, using: &random) << topShift)
      | UInt64.random(in: 0..<256, using: &random) << 30
    var addresses: [UInt64] = []
    var sizes: [UInt64] = []
    var dataFrames: [UInt64] = []
    func leaf(_ writable: Bool = true, user: Bool? = nil) -> UInt64 {
      var bits = leafBits
      if writable && chance(80) { bits |= EntryBits.writable }
      if user ?? chance(60) { bits |= EntryBits.user }
      if nx && chance(25) { bits |= EntryBits.executeDisable }
      if chance(15) { bits |= EntryBits.global }
      if chance(50) { bits |= EntryBits.dirty }
      if chance(20) { bits |= UInt64.random(in: 1..<4, using: &random) << 59 }
      if chance(20) { bits &= ~EntryBits.accessed }
      return bits
    }
    if levels > 0 {
      for (index, offset) in [0, 1, 2, 5].enumerated() {
        let gva = cluster + UInt64(offset) << 12
        let frame: UInt64 = 0x20_0000 + UInt64(index) << 12
        guest.map(gva, to: frame, bits: leaf())
        addresses.append(gva)
        sizes.append(0x1000)
        dataFrames.append(frame)
      }
      addresses.append(cluster + 0x3000)  // a hole in the shared table
      sizes.append(0)
      if !paravirtual {
        guest.map(cluster + 0x20_0000, to: 0x40_0000, pageLevel: 2, bits: leaf())
        addresses.append(cluster + 0x20_0000)
        sizes.append(0x20_0000)
        if gigabyte && chance(60) && cluster >> 30 & 0x1FF < 511 {
          guest.map(cluster + 0x4000_0000, to: 0x4000_0000, pageLevel: 3, bits: leaf())
          addresses.append(cluster + 0x4000_0000)
          sizes.append(0x4000_0000)
        }
      }
      // Aliasing: a second directory entry naming the shared page table.
      let shared = guest.entry(of: cluster, level: 2)
      guest.setEntry(of: cluster + 0x60_0000, level: 2, to: shared)
      addresses.append(cluster + 0x60_0000)
      sizes.append(0x1000)
      addresses.append(cluster + 0x80_0000)  // a hole in the directory
      sizes.append(0)
      // A supervisor page in the upper half, perhaps global.
      let kernel = 0xFFFF_8000_0000_0000 | UInt64.random(in: 0..<64, using: &random) << 30
      let kernelFrame: UInt64 = 0x20_0000 + 8 << 12
      guest.map(kernel & mask48, to: kernelFrame, bits: leaf(user: false))
      addresses.append(sign(kernel & mask48, levels))
      sizes.append(0x1000)
      dataFrames.append(kernelFrame)
      // A guest table mapped as data (read-only under paravirtualization).
      let tableAsData = cluster + 0x9000
      let tableFrame = guest.tables[guest.tables.count - 1]
      var tableBits = leaf(!paravirtual)
      if paravirtual { tableBits &= ~EntryBits.writable }
      guest.map(tableAsData, to: tableFrame, bits: tableBits)
      addresses.append(tableAsData)
      sizes.append(0x1000)
      // A root that maps itself (not for a paravirtual guest: the page types forbid it).
      if !paravirtual {
        let slot = UInt64.random(in: 300..<500, using: &random)
        guest.setEntry(
          of: slot << topShift, level: tableLevels, to: guest.root | EntryBits.directory)
        var selfMapped = slot << topShift
        for level in 1..<tableLevels {
          let index = level == 1 ? cluster >> topShift & 0x1FF : slot
          selfMapped |= index << UInt64(12 + 9 * (level - 1))
        }
        addresses.append(sign(selfMapped, levels))
        sizes.append(0x1000)
      }
      // Upper-level rights, a few restricted.
      for _ in 0..<2 where chance(25) {
        let level = Int.random(in: 2...tableLevels, using: &random)
        let entry = guest.entry(of: cluster, level: level)
        if entry & EntryBits.present != 0 && entry & TableBuilder.largePage == 0 {
          var changed = entry
          if chance(50) { changed &= ~EntryBits.writable }
          if chance(30) { changed &= ~EntryBits.user }
          if nx && chance(20) { changed |= EntryBits.executeDisable }
          guest.setEntry(of: cluster, level: level, to: changed)
        }
      }
      addresses.append(0x0000_8000_0000_0000 | cluster)  // not canonical
      sizes.append(0)
    } else {
      for index in 0..<6 {
        let frame: UInt64 = 0x20_0000 + UInt64(index) << 12
        addresses.append(frame)
        sizes.append(0x1000)
        dataFrames.append(frame)
      }
    }
    let unbacked: UInt64 = 0x20_0000 + 12 << 12
    if levels > 0 && !paravirtual {
      guest.map(cluster + 0xA000, to: unbacked, bits: leaf())
      addresses.append(cluster + 0xA000)
      sizes.append(0x1000)
    } else if levels == 0 {
      addresses.append(unbacked)
      sizes.append(0x1000)
    }
    let guestTables = levels > 0 ? guest.tables : []

    // The nested dimension: every guest table and data frame at GPA + hostOffset.
    var memory = PhysicalMemory()
    let nested: NestedPaging
    switch nestedKind {
    case "ept", "npt":
      let isEPT = nestedKind == "ept"
      let nestedLevels = chance(75) ? 4 : 5
      let accessedDirty = isEPT && chance(50)
      let modeBasedExecute = isEPT && chance(20)
      let directory =
        isEPT
        ? EntryBits.eptAll | (modeBasedExecute ? EntryBits.eptUserExecute : 0)
        : EntryBits.directory
      let leafNested = directory | (isEPT ? EntryBits.eptWriteBack : 0)
      var tables = TableBuilder(
        levels: nestedLevels, tableArea: Self.nestedTableArea, directoryBits: directory)
      for frame in guestTables + dataFrames {
        tables.map(frame, to: frame + Self.hostOffset, bits: leafNested)
      }
      if levels > 0 && !paravirtual {
        if chance(60) {
          tables.map(0x40_0000, to: 0x40_0000 + Self.hostOffset, pageLevel: 2, bits: leafNested)
        } else {
          for piece in stride(from: UInt64(0x40_0000), to: 0x60_0000, by: 0x1000) {
            tables.map(piece, to: piece + Self.hostOffset, bits: leafNested)
          }
        }
        if gigabyte {
          tables.map(
            0x4000_0000, to: 0x4000_0000 + Self.hostOffset, pageLevel: 3, bits: leafNested)
        } else {
          for piece in stride(from: UInt64(0x4000_0000), to: 0x8000_0000, by: 0x20_0000) {
            tables.map(piece, to: piece + Self.hostOffset, pageLevel: 2, bits: leafNested)
          }
        }
      }
      tables.place(into: &memory)
      if isEPT {
        nested = .ept(
          ExtendedPageTables(
            eptp: GuestSetup.eptp(
              root: tables.root, levels: nestedLevels, accessedDirty: accessedDirty),
            physicalAddressBits: 46, executeOnly: chance(70), gigabytePages: gigabyte,
            modeBasedExecute: modeBasedExecute))
      } else {
        nested = .npt(
          NestedPageTables(
            nCR3: tables.root, hostCR4: nestedLevels == 5 ? 0x1020 : 0x20,
            hostEFER: chance(80) ? 0xD00 : 0x500, physicalAddressBits: 48))
      }
      guest.place(into: &memory) { $0 + Self.hostOffset }
      for frame in dataFrames { memory[frame + Self.hostOffset] = 0x1234_5678 }
    default:
      nested = .none
      guest.place(into: &memory)
      for frame in dataFrames { memory[frame] = 0x1234_5678 }
    }

    var cr4 = levels == 0 ? 0 : GuestSetup.cr4(levels: levels)
    if levels > 0 {
      for bit in [7, 20, 21, 22, 24] where chance(30) { cr4 |= 1 << UInt64(bit) }
      if chance(20) { cr4 |= 1 << 17 }
    }
    let cr0 = levels == 0 ? UInt64(0x11) : GuestSetup.cr0 & ~(chance(25) ? UInt64(1) << 16 : 0)
    let efer: UInt64 = levels == 0 ? 0 : (nx ? 0xD00 : 0x500)
    state = MachineState(
      processor: processor,
      guest: GuestRegisters(
        cr0: cr0, cr3: levels == 0 ? 0 : guest.root, cr4: cr4, efer: efer,
        rflags: chance(30) ? 0x40002 : 0x2,
        pkru: chance(30) ? UInt64.random(in: 0...0xFFFF, using: &random) : 0,
        pkrs: chance(30) ? UInt64.random(in: 0...0xFFFF, using: &random) : 0),
      nested: nested, memory: memory)
    self.addresses = addresses
    pageSizes = sizes
    self.guestTables = guestTables
    self.dataFrames = dataFrames
    unbackedFrame = unbacked
  }
}

private let mask48: UInt64 = (1 << 48) - 1

/// The canonical form of a linear address for `levels`-level paging.
private func sign(_ address: UInt64, _ levels: Int) -> UInt64 {
  let shift: UInt64 = levels == 5 ? 7 : 16
  return UInt64(bitPattern: Int64(bitPattern: address << shift) >> shift)
}
