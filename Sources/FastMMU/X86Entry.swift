/// The x86-64 paging entry (Intel SDM Vol. 3A §4.5, SEMANTICS §1.3), shared by guest tables,
/// AMD nested tables, shadow tables and paravirtual tables.
///
/// | bits   | 0 | 1   | 2   | 3   | 4   | 5 | 6 | 7      | 8 | 11:9 | M-1:12  | 58:52 | 62:59 | 63 |
/// |--------|---|-----|-----|-----|-----|---|---|--------|---|------|---------|-------|-------|----|
/// | field  | P | R/W | U/S | PWT | PCD | A | D | PS/PAT | G | ign. | address | ign.  | PKEY  | XD |
///
/// D and G mean something only in leaves; bit 7 is PS in PDPTEs and PDEs (a 1-GiB or 2-MiB
/// leaf) and PAT in PTEs; the protection key is read from leaves only.
enum X86Entry {
  static let present: UInt64 = 1 << 0
  static let writable: UInt64 = 1 << 1
  static let user: UInt64 = 1 << 2
  static let accessed: UInt64 = 1 << 5
  static let dirty: UInt64 = 1 << 6
  static let pageSize: UInt64 = 1 << 7
  static let global: UInt64 = 1 << 8
  static let executeDisable: UInt64 = 1 << 63
  /// Bits 51:12, the widest address field; bits from M up are reserved (``X86ReservedBits``).
  static let addressMask: UInt64 = 0x000F_FFFF_FFFF_F000

  /// Whether the entry at `level` maps a page rather than a table: a PTE, or a PDPTE or PDE
  /// with PS = 1 (SEMANTICS §1.7 step 4c).
  @inline(__always)
  static func isLeaf(_ entry: UInt64, level: Int) -> Bool {
    let largeBit = entry &>> 7 & 1
    let mayBeLarge: UInt64 = level <= 3 ? 1 : 0
    let pageTable: UInt64 = level == 1 ? 1 : 0
    return pageTable | largeBit & mayBeLarge != 0
  }

  /// The frame number an entry holds (bits 51:12).
  @inline(__always)
  static func frame(_ entry: UInt64) -> UInt64 { (entry & addressMask) &>> 12 }

  /// The protection key of a leaf, bits 62:59.
  @inline(__always)
  static func protectionKey(_ entry: UInt64) -> UInt8 {
    UInt8(truncatingIfNeeded: entry >> 59) & 0xF
  }

  /// The index of `address` in a table at `level` (1 = PT … 5 = PML5; SEMANTICS §1.2).
  @inline(__always)
  static func index(_ address: UInt64, level: Int) -> UInt64 {
    (address &>> UInt64(truncatingIfNeeded: 3 &+ 9 &* level)) & 0x1FF
  }

  /// The size of the page a leaf at `level` maps: 4 KiB, 2 MiB or 1 GiB.
  @inline(__always)
  static func pageBytes(level: Int) -> UInt64 { 1 &<< UInt64(truncatingIfNeeded: 3 &+ 9 &* level) }

  /// The physical address a leaf at `level` maps `address` to.
  @inline(__always)
  static func translate(_ entry: UInt64, level: Int, _ address: UInt64) -> UInt64 {
    let offset = pageBytes(level: level) - 1
    return (entry & addressMask & ~offset) | (address & offset)
  }
}

/// A set of rights as the TLB and the permission tables index them (KVM's `ACC_*` bits, widened
/// with the nested dimension):
///
/// | bit   | 0       | 1       | 2                 | 3        | 4        | 5                     |
/// |-------|---------|---------|-------------------|----------|----------|-----------------------|
/// | right | guest U | guest W | guest X (not XD)  | nested R | nested W | nested X (XS, or XU)  |
///
/// Without a nested dimension the nested bits are all 1.
enum Rights {
  static let user: UInt8 = 1 << 0
  static let write: UInt8 = 1 << 1
  static let execute: UInt8 = 1 << 2
  static let guestAll: UInt8 = 0b111
  static let nestedRead: UInt8 = 1 << 3
  static let nestedWrite: UInt8 = 1 << 4
  static let nestedExecute: UInt8 = 1 << 5
  static let nestedAll: UInt8 = 0b111 << 3

  /// The guest rights one x86 entry grants: U/S, R/W, and X unless XD (with NXE).
  @inline(__always)
  static func of(_ entry: UInt64, executeDisableEnabled: Bool) -> UInt8 {
    let xd = executeDisableEnabled && entry & X86Entry.executeDisable != 0
    return UInt8(truncatingIfNeeded: (entry >> 2) & 1) | UInt8(truncatingIfNeeded: entry & 2)
      | (xd ? 0 : execute)
  }
}
