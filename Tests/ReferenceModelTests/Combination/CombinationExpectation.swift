import Machine

// The expectation of the exhaustive combination test, written from SEMANTICS §1 alone: it never
// calls the model and shares none of its code. It knows the fixed page-table layout of
// ``CombinationLayout`` and reads flags, not entries.

/// The flags the combination test draws for one paging entry.
struct EntryFlags: OptionSet, Hashable, CustomStringConvertible {
  let rawValue: UInt16
  static let p = EntryFlags(rawValue: 1 << 0)
  static let w = EntryFlags(rawValue: 1 << 1)
  static let u = EntryFlags(rawValue: 1 << 2)
  static let xd = EntryFlags(rawValue: 1 << 3)
  static let a = EntryFlags(rawValue: 1 << 4)
  static let d = EntryFlags(rawValue: 1 << 5)
  static let ps = EntryFlags(rawValue: 1 << 6)
  /// The entry's chosen reserved-candidate bit (see ``CombinationLayout``).
  static let r = EntryFlags(rawValue: 1 << 7)

  /// Every subset of the eight flags.
  static let everySubset = (0..<256).map { EntryFlags(rawValue: UInt16($0)) }

  var description: String {
    let names: [(EntryFlags, String)] = [
      (.p, "P"), (.w, "W"), (.u, "U"), (.xd, "XD"), (.a, "A"), (.d, "D"), (.ps, "PS"), (.r, "R"),
    ]
    let set = names.filter { contains($0.0) }.map(\.1)
    return set.isEmpty ? "-" : set.joined(separator: "|")
  }
}

/// The control bits of one combination (SEMANTICS §1.1): CR0.WP, CR4.SMEP, CR4.SMAP,
/// EFLAGS.AC, EFER.NXE.
struct ControlBits: Hashable, CustomStringConvertible {
  var wp: Bool
  var smep: Bool
  var smap: Bool
  var ac: Bool
  var nxe: Bool

  /// The 32 combinations, numbered by their bits.
  init(number: Int) {
    wp = number & 1 != 0
    smep = number & 2 != 0
    smap = number & 4 != 0
    ac = number & 8 != 0
    nxe = number & 16 != 0
  }

  var description: String {
    "WP=\(wp ? 1 : 0) SMEP=\(smep ? 1 : 0) SMAP=\(smap ? 1 : 0) AC=\(ac ? 1 : 0) "
      + "NXE=\(nxe ? 1 : 0)"
  }
}

/// One access of the combination test: privilege level, kind and whether it is implicit.
struct CombinationAccess: Hashable, CustomStringConvertible {
  var cpl: Int
  var kind: AccessKind
  var implicit: Bool

  /// CPL 0 and CPL 3 explicit reads, writes and fetches, and implicit reads and writes at
  /// CPL 3 (an implicit access is supervisor-mode at every CPL, SEMANTICS §1.4).
  static let all: [CombinationAccess] =
    [0, 3].flatMap { cpl in
      [AccessKind.read, .write, .fetch].map {
        CombinationAccess(cpl: cpl, kind: $0, implicit: false)
      }
    } + [
      CombinationAccess(cpl: 3, kind: .read, implicit: true),
      CombinationAccess(cpl: 3, kind: .write, implicit: true),
    ]

  var description: String { "CPL\(cpl) \(implicit ? "implicit " : "")\(kind.rawValue)" }
}

/// The page-table layout of the combination test (addresses are physical; no nested paging,
/// MAXPHYADDR 46, 1-GiB pages supported, Intel):
///
/// 4 KiB (`directory` = PDE, `leaf` = PTE):
///   PML4 0x1000 —[1]→ PDPT 0x2000 —[2]→ PD 0x3000 —[3]→ PDE = 0x40_0000 | flags
///   candidate reserved bit of the PDE: 13 (reserved only when PS = 1, else an address bit:
///   the PDE then names the page table at 0x40_2000 instead of 0x40_0000);
///   PTE [4] in both page tables: frame 0x123_4000 (in 0x40_0000) or 0x123_6000 (in 0x40_2000)
///   | flags; candidate reserved bit 51 (MAXPHYADDR 46: always reserved).
///   PDE with PS = 1 maps the 2-MiB page 0x40_0000.
/// 2 MiB (`directory` = PDPTE, `leaf` = PDE):
///   PML4 0x1000 —[1]→ PDPT 0x2000 —[2]→ PDPTE = 0x4000_0000 | flags, candidate bit 51;
///   PD 0x4000_0000 —[3]→ PDE = 0x60_0000 | flags, candidate bit 13 (reserved only when
///   PS = 1). PDPTE with PS = 1 maps the 1-GiB page 0x4000_0000. PDE with PS = 0 names the
///   page table 0x60_0000 (0x60_2000 with bit 13) whose PTE [4] is fixed:
///   P|W|U|A|D, frame 0x700_0000 (0x710_0000).
/// The fixed PML4E (and the 4-KiB case's PDPTE) are P|W|U|A.
enum CombinationLayout: String, CaseIterable, CustomStringConvertible {
  case small = "4 KiB"
  case large = "2 MiB"

  var description: String { rawValue }

  /// The linear address: indices 1, 2, 3, 4 and offset 0x567.
  static let linear: UInt64 = 1 << 39 | 2 << 30 | 3 << 21 | 4 << 12 | 0x567

  var directoryAddress: UInt64 { self == .small ? 0x3018 : 0x2010 }
  var directoryReservedBit: UInt64 { self == .small ? 1 << 13 : 1 << 51 }
  var directoryTarget: UInt64 { self == .small ? 0x40_0000 : 0x4000_0000 }
  /// The leaf entry's address when the directory is a valid non-leaf entry.
  func leafAddress(directory: EntryFlags) -> UInt64 {
    switch self {
    case .small: directory.contains(.r) ? 0x40_2020 : 0x40_0020
    case .large: 0x4000_0018
    }
  }
  var leafReservedBit: UInt64 { self == .small ? 1 << 51 : 1 << 13 }

  /// An entry's raw value from its flags.
  static func encode(_ flags: EntryFlags, address: UInt64, reservedBit: UInt64) -> UInt64 {
    var value = address
    if flags.contains(.p) { value |= 1 << 0 }
    if flags.contains(.w) { value |= 1 << 1 }
    if flags.contains(.u) { value |= 1 << 2 }
    if flags.contains(.a) { value |= 1 << 5 }
    if flags.contains(.d) { value |= 1 << 6 }
    if flags.contains(.ps) { value |= 1 << 7 }
    if flags.contains(.xd) { value |= 1 << 63 }
    if flags.contains(.r) { value |= reservedBit }
    return value
  }
}

/// What the combination must produce: the outcome and the A/D writes, by ascending address.
struct CombinationExpectation: Equatable, CustomStringConvertible {
  var outcome: Outcome
  var writes: [Write]

  var description: String {
    "\(outcome) writes [\(writes.map(\.description).joined(separator: ", "))]"
  }
}

/// The expected result of one combination, following SEMANTICS §1.4–§1.8 step by step.
/// `accessedOnFault` selects the §1.8 IMPL behaviour that sets A in traversed non-leaf entries
/// of a faulting walk (never in the leaf).
func expectedResult(
  _ layout: CombinationLayout, directory: EntryFlags, leaf: EntryFlags, controls c: ControlBits,
  access: CombinationAccess, accessedOnFault: Bool
) -> CombinationExpectation {
  let linear = CombinationLayout.linear
  // §1.4: user-mode iff CPL 3 and explicit.
  let userMode = access.cpl == 3 && !access.implicit
  let isWrite = access.kind == .write
  let isFetch = access.kind == .fetch

  // §1.6: the bits that describe the access.
  var accessBits: UInt64 = 0
  if isWrite { accessBits |= PF.w }
  if userMode { accessBits |= PF.u }
  if isFetch && (c.smep || c.nxe) { accessBits |= PF.id }

  // The entries of the path after the fixed ones, top-down, as the walk meets them:
  // (address, flags, is it a leaf). Filled in as the walk goes.
  var traversed: [(address: UInt64, flags: EntryFlags, isLeaf: Bool)] = []

  func fault(_ extra: UInt64) -> CombinationExpectation {
    var writes: [Write] = []
    if accessedOnFault {
      for entry in traversed where !entry.isLeaf && !entry.flags.contains(.a) {
        writes.append(Write(address: entry.address, bits: X86.a))
      }
      writes.sort { $0.address < $1.address }
    }
    return CombinationExpectation(
      outcome: .pageFault(errorCode: accessBits | extra, linearAddress: linear), writes: writes)
  }

  // The directory entry.
  if !directory.contains(.p) { return fault(0) }
  let directoryIsLeaf = directory.contains(.ps)
  var directoryReserved = !c.nxe && directory.contains(.xd)
  switch layout {
  case .small:
    // PDE: bit 13 is reserved in a 2-MiB leaf only (bits 20:13).
    if directoryIsLeaf && directory.contains(.r) { directoryReserved = true }
  case .large:
    // PDPTE: bit 51 is above MAXPHYADDR 46, reserved everywhere.
    if directory.contains(.r) { directoryReserved = true }
  }
  if directoryReserved { return fault(PF.p | PF.rsvd) }

  var pathFlags: [EntryFlags] = [directory]
  var frame: UInt64
  var pageMask: UInt64
  if directoryIsLeaf {
    traversed.append((layout.directoryAddress, directory, true))
    if layout == .small {
      frame = 0x40_0000
      pageMask = (1 << 21) - 1
    } else {
      frame = 0x4000_0000
      pageMask = (1 << 30) - 1
    }
  } else {
    traversed.append((layout.directoryAddress, directory, false))
    let leafAddress = layout.leafAddress(directory: directory)
    // The leaf entry (a PTE for 4 KiB; a PDE for 2 MiB, which is a leaf only with PS = 1).
    if !leaf.contains(.p) { return fault(0) }
    let leafIsLeaf = layout == .small || leaf.contains(.ps)
    var leafReserved = !c.nxe && leaf.contains(.xd)
    switch layout {
    case .small:
      if leaf.contains(.r) { leafReserved = true }  // bit 51
    case .large:
      if leafIsLeaf && leaf.contains(.r) { leafReserved = true }  // bit 13 of a 2-MiB leaf
    }
    if leafReserved { return fault(PF.p | PF.rsvd) }
    traversed.append((leafAddress, leaf, leafIsLeaf))
    pathFlags.append(leaf)
    switch layout {
    case .small:
      frame = directory.contains(.r) ? 0x123_6000 : 0x123_4000
      pageMask = (1 << 12) - 1
    case .large:
      if leafIsLeaf {
        frame = 0x60_0000
        pageMask = (1 << 21) - 1
      } else {
        // The fixed PTE below: P|W|U|A|D, nothing to write, nothing to deny.
        frame = leaf.contains(.r) ? 0x710_0000 : 0x700_0000
        pageMask = (1 << 12) - 1
      }
    }
  }

  // §1.5: the rights of the whole path (the fixed entries are P|W|U|A).
  let userPage = pathFlags.allSatisfy { $0.contains(.u) }
  let writable = pathFlags.allSatisfy { $0.contains(.w) }
  let executeDisabled = c.nxe && pathFlags.contains { $0.contains(.xd) }

  var denied = false
  if userMode && !userPage { denied = true }  // rule 1
  if userMode && isWrite && !writable { denied = true }  // rule 2
  if isFetch && executeDisabled { denied = true }  // rule 3
  if !userMode && isFetch && userPage && c.smep { denied = true }  // rule 4
  let acRescues = !access.implicit && access.cpl < 3 && c.ac
  if !userMode && !isFetch && userPage && c.smap && !acRescues { denied = true }  // rule 5
  if !userMode && isWrite && !writable && c.wp { denied = true }  // rule 6
  if denied { return fault(PF.p) }

  // §1.8: A in every entry used, D in the leaf for writes; nothing written that is set.
  var writes: [Write] = []
  for entry in traversed {
    var bits: UInt64 = 0
    if !entry.flags.contains(.a) { bits |= X86.a }
    if entry.isLeaf && isWrite && !entry.flags.contains(.d) { bits |= X86.d }
    if bits != 0 { writes.append(Write(address: entry.address, bits: bits)) }
  }
  writes.sort { $0.address < $1.address }
  return CombinationExpectation(
    outcome: .translated(hostPhysical: frame | (linear & pageMask)), writes: writes)
}
