import Machine

/// The second decision procedure (docs/prover.md): for concrete states only, enumerate the
/// mapped regions of each table tree — shadow, guest, host — compose guest with host, and
/// compare region by region.
///
/// It is deliberately independent of the reference model: it decodes entries and applies the
/// permission rules itself (SEMANTICS §1.3, §1.5, §2.2–§2.3), so that agreement between it and
/// the prover is evidence about both. It decides soundness, accessed/dirty, page-table
/// protection and isolation; fault classification is the prover's alone.
public struct RegionEnumeration {
  /// Per property, whether it holds.
  public private(set) var verdicts: [PropertyName: Bool] = [:]

  /// A mapped region of an x86 tree.
  struct Region {
    var base: UInt64
    var size: UInt64
    /// Physical address of `base` (host for the shadow, guest-physical for the guest).
    var frame: UInt64
    var user: Bool
    var writable: Bool
    var executeDisable: Bool
    var key: UInt64
    /// Every entry on the path has A set.
    var accessed: Bool
    /// The leaf has D set.
    var dirty: Bool
    /// Guest-physical addresses of the entries on the path (for A/D writes through EPT).
    var path: [UInt64]
    /// Whether the path reads an out-of-sync level-1 table.
    var stale: Bool
  }

  /// A mapped region of the host tables.
  struct HostRegion {
    var base: UInt64
    var size: UInt64
    var frame: UInt64
    var read: Bool
    var write: Bool
    var execute: Bool
    var userExecute: Bool
  }

  /// Decides the properties of `machine`; `nil` when the state lacks a shadow or nested
  /// paging, has guest paging off, or uses EPT's mode-based execute control.
  public init?(_ machine: MachineState) {
    guard let shadow = machine.shadow else { return nil }
    let guest = machine.guest
    guard guest.cr0 >> 31 & 1 == 1 else { return nil }
    let guestLevels = guest.cr4 >> 12 & 1 == 1 ? 5 : 4
    let shadowLevels = shadow.cr4 >> 12 & 1 == 1 ? 5 : 4
    let memory = machine.memory
    let hostBits: Int
    let hostLevels: Int
    let hostRoot: UInt64
    /// Whether a guest paging-entry read needs the host's write right: EPT with A/D flags
    /// (§2.4), and NPT always (§3.2).
    let tableReadsWrite: Bool
    var host: [HostRegion] = []
    switch machine.nested {
    case .ept(let ept):
      guard !ept.modeBasedExecute else { return nil }
      hostBits = ept.physicalAddressBits
      hostLevels = Int(ept.eptp >> 3 & 7) + 1
      hostRoot = ept.eptp & mask(hostBits - 1, 12)
      tableReadsWrite = ept.eptp >> 6 & 1 == 1
      func eptWalk(_ table: UInt64, level: Int, base: UInt64, rights: (Bool, Bool, Bool)) {
        for index in 0..<UInt64(512) {
          let e = memory[table | index << 3]
          let xwr = e & 7
          guard xwr != 0 else { continue }
          let span = UInt64(1) << UInt64(12 + 9 * (level - 1))
          let start = base | index &* span
          let leaf = level == 1 || ((level == 2 || level == 3) && e >> 7 & 1 == 1)
          var reserved = mask(51, hostBits)
          if level >= 4 {
            reserved |= mask(7, 3)
          } else if !leaf {
            reserved |= mask(6, 3)
          } else if level == 3 {
            reserved |= mask(29, 12) | (ept.gigabytePages ? 0 : 1 << 7)
          } else if level == 2 {
            reserved |= mask(20, 12)
          }
          let type = e >> 3 & 7
          if xwr == 2 || xwr == 6 || (xwr == 4 && !ept.executeOnly) || e & reserved != 0
            || (leaf && (type == 2 || type == 3 || type == 7))
          {
            continue
          }
          let r = (rights.0 && e & 1 != 0, rights.1 && e & 2 != 0, rights.2 && e & 4 != 0)
          if leaf {
            let frame = e & mask(hostBits - 1, 12) & ~(span - 1)
            host.append(
              HostRegion(
                base: start, size: span, frame: frame, read: r.0, write: r.1, execute: r.2,
                userExecute: false))
          } else {
            eptWalk(e & mask(hostBits - 1, 12), level: level - 1, base: start, rights: r)
          }
        }
      }
      eptWalk(hostRoot, level: hostLevels, base: 0, rights: (true, true, true))
    case .npt(let npt):
      hostBits = npt.physicalAddressBits
      hostLevels = npt.hostCR4 >> 12 & 1 == 1 ? 5 : 4
      hostRoot = npt.nCR3 & mask(hostBits - 1, 12)
      tableReadsWrite = true
      let nxe = npt.hostEFER >> 11 & 1 == 1
      // NPT entries are x86 entries in the host's mode (§3.1); every nested access is a user
      // access, so each right needs U/S on the whole path (§3.2).
      func nptWalk(_ table: UInt64, level: Int, base: UInt64, rights: (Bool, Bool, Bool)) {
        for index in 0..<UInt64(512) {
          let e = memory[table | index << 3]
          guard e & 1 != 0 else { continue }
          let span = UInt64(1) << UInt64(12 + 9 * (level - 1))
          let start = base | index &* span
          let leaf = level == 1 || ((level == 2 || level == 3) && e >> 7 & 1 == 1)
          var reserved = mask(51, hostBits) | (nxe ? 0 : 1 << 63)
          if level >= 4 {
            reserved |= 1 << 7 | 1 << 8
          } else if leaf && level == 3 {
            reserved |= mask(29, 13)
          } else if leaf && level == 2 {
            reserved |= mask(20, 13)
          }
          guard e & reserved == 0 else { continue }
          let user = e & 4 != 0
          let r = (
            rights.0 && user, rights.1 && user && e & 2 != 0,
            rights.2 && user && !(nxe && e >> 63 == 1)
          )
          if leaf {
            let frame = e & mask(hostBits - 1, 12) & ~(span - 1)
            host.append(
              HostRegion(
                base: start, size: span, frame: frame, read: r.0, write: r.1, execute: r.2,
                userExecute: r.2))
          } else {
            nptWalk(e & mask(hostBits - 1, 12), level: level - 1, base: start, rights: r)
          }
        }
      }
      nptWalk(hostRoot, level: hostLevels, base: 0, rights: (true, true, true))
    case .none:
      return nil
    }
    host.sort { $0.base < $1.base }
    func hostRegion(_ gpa: UInt64) -> HostRegion? {
      var low = 0
      var high = host.count
      while low < high {
        let middle = (low + high) / 2
        if host[middle].base + host[middle].size <= gpa { low = middle + 1 } else { high = middle }
      }
      guard low < host.count, host[low].base <= gpa else { return nil }
      return host[low]
    }
    func hostAddress(_ gpa: UInt64) -> UInt64? {
      hostRegion(gpa).map { $0.frame + (gpa - $0.base) }
    }

    // x86 trees. The guest's tables are read at their host address (a table EPT does not let
    // the walk read is a fault there); the shadow's directly.
    let processor = machine.processor
    func enumerate(
      root: UInt64, levels: Int, efer: UInt64, addressBits: Int, guestTables: Bool,
      unsyncFrames: Set<UInt64>, shadowed: Set<TablePosition>,
      positions: inout Set<TablePosition>, tables: inout [UInt64: Set<Int>]
    ) -> [Region] {
      let nxe = efer >> 11 & 1 == 1
      var regions: [Region] = []
      let top = levels
      func walk(_ table: UInt64, level: Int, base: UInt64, inherited: Region) {
        let location: UInt64
        if guestTables {
          // Reading a guest entry needs EPT read (write, with EPT A/D flags).
          guard let h = hostRegion(table), h.read, !tableReadsWrite || h.write,
            let address = hostAddress(table)
          else { return }
          location = address
          // SEMANTICS §5.1 `WP`: a guest table counts only where the shadow has a table at the
          // same place, i.e. where a shadow page shadows it.
          if shadowed.contains(TablePosition(level: level, base: base)) {
            tables[address >> 12, default: []].insert(level)
          }
        } else {
          location = table
        }
        positions.insert(TablePosition(level: level, base: base))
        let stale =
          inherited.stale || (level == 1 && guestTables && unsyncFrames.contains(table >> 12))
        for index in 0..<UInt64(512) {
          let e = memory[location | index << 3]
          let span = UInt64(1) << UInt64(12 + 9 * (level - 1))
          var start = base | index &* span
          if level == top && index >= 256 { start |= ~mask(width: 12 + 9 * top) }
          guard e & 1 != 0 else {
            if stale { regions.append(staleRegion(start, span)) }
            continue
          }
          let leaf = level == 1 || ((level == 2 || level == 3) && e >> 7 & 1 == 1)
          var reserved = mask(51, addressBits) | (nxe ? 0 : 1 << 63)
          if level >= 4 {
            reserved |= 1 << 7 | (processor.vendor == .amd ? 1 << 8 : 0)
          } else if leaf && level == 3 {
            reserved |= mask(29, 13) | (processor.gigabytePages ? 0 : 1 << 7)
          } else if leaf && level == 2 {
            reserved |= mask(20, 13)
          }
          guard e & reserved == 0 else {
            if stale { regions.append(staleRegion(start, span)) }
            continue
          }
          var r = inherited
          r.user = r.user && e & 4 != 0
          r.writable = r.writable && e & 2 != 0
          r.executeDisable = r.executeDisable || (nxe && e >> 63 == 1)
          r.accessed = r.accessed && e & 0x20 != 0
          r.path.append(table | index << 3)
          r.stale = stale
          if leaf {
            r.base = start
            r.size = span
            r.frame = e & mask(addressBits - 1, 12) & ~(span - 1)
            r.key = e >> 59 & 0xF
            r.dirty = e & 0x40 != 0
            regions.append(r)
          } else {
            walk(e & mask(addressBits - 1, 12), level: level - 1, base: start, inherited: r)
          }
        }
      }
      func staleRegion(_ start: UInt64, _ span: UInt64) -> Region {
        Region(
          base: start, size: span, frame: 0, user: false, writable: false, executeDisable: true,
          key: 0, accessed: false, dirty: false, path: [], stale: true)
      }
      walk(
        root & mask(addressBits - 1, 12), level: levels, base: 0,
        inherited: Region(
          base: 0, size: 0, frame: 0, user: true, writable: true, executeDisable: false, key: 0,
          accessed: true, dirty: false, path: [], stale: false))
      return regions
    }

    var unsyncHost = Set<UInt64>()
    for gfn in shadow.unsyncTables {
      if let h = hostAddress(gfn << 12) { unsyncHost.insert(h >> 12) }
    }
    var ignored: [UInt64: Set<Int>] = [:]
    var shadowTables = Set<TablePosition>()
    let shadowRegions = enumerate(
      root: shadow.cr3, levels: shadowLevels, efer: shadow.efer, addressBits: hostBits,
      guestTables: false, unsyncFrames: [], shadowed: [], positions: &shadowTables,
      tables: &ignored)
    var guestTableFrames: [UInt64: Set<Int>] = [:]
    var guestPositions = Set<TablePosition>()
    let guestRegions = enumerate(
      root: guest.cr3, levels: guestLevels, efer: guest.efer,
      addressBits: processor.physicalAddressBits, guestTables: true,
      unsyncFrames: Set(shadow.unsyncTables), shadowed: shadowTables,
      positions: &guestPositions, tables: &guestTableFrames)
    let protectedFrames = Set(
      guestTableFrames.compactMap { frame, levels in
        levels == [1] && unsyncHost.contains(frame) ? nil : frame
      })
    let sortedGuest = guestRegions.sorted { $0.base < $1.base }
    func guestRegion(_ va: UInt64) -> Region? {
      var low = 0
      var high = sortedGuest.count
      while low < high {
        let middle = (low + high) / 2
        let r = sortedGuest[middle]
        if r.base &+ r.size <= va && r.base &+ r.size != 0 {
          low = middle + 1
        } else {
          high = middle
        }
      }
      guard low < sortedGuest.count, sortedGuest[low].base <= va else { return nil }
      return sortedGuest[low]
    }

    let ranges = machine.hostRanges
    func inRanges(_ start: UInt64, _ size: UInt64) -> Bool {
      ranges.contains { $0.contains(start) && $0.contains(start + size - 1) }
    }

    var sound = true
    var accessedDirty = true
    var protected = true
    var isolated = true
    for access in Self.accesses {
      for s in shadowRegions where !s.stale || s.size > 0 {
        if s.frame == 0 && s.stale { continue }
        guard Self.permits(s, access, registers: shadow, guest: guest) else { continue }
        if !inRanges(s.frame, s.size) { isolated = false }
        if access.kind == .write {
          let first = s.frame >> 12
          let last = (s.frame + s.size - 1) >> 12
          if protectedFrames.contains(where: { $0 >= first && $0 <= last }) { protected = false }
        }
        // Walk the shadow region piece by piece along the guest regions under it.
        var va = s.base
        let end = s.base &+ s.size
        repeat {
          guard let g = guestRegion(va), !g.stale else {
            if guestRegion(va)?.stale != true { sound = false }
            break
          }
          let pieceEnd = min(end &- 1, g.base &+ g.size &- 1)
          let gpa = g.frame + (va - g.base)
          var ok = Self.permits(g, access, registers: nil, guest: guest)
          var pieceVA = va
          while ok && pieceVA <= pieceEnd {
            let gpaHere = g.frame + (pieceVA - g.base)
            guard let h = hostRegion(gpaHere), Self.hostPermits(h, access) else {
              ok = false
              break
            }
            let hpa = h.frame &+ (gpaHere &- h.base)
            if hpa != s.frame &+ (pieceVA &- s.base) { ok = false }
            // Guest A/D writes need EPT W on the entries' pages.
            let needsWrites = !g.accessed || (access.kind == .write && !g.dirty)
            if needsWrites {
              let writable = g.path.allSatisfy { hostRegion($0)?.write == true }
              if !writable { ok = false } else { accessedDirty = false }
            }
            let hostEnd = pieceVA &+ (h.base &+ h.size &- 1 &- gpaHere)
            if hostEnd >= pieceEnd { break }
            pieceVA = hostEnd &+ 1
          }
          _ = gpa
          if !ok { sound = false }
          if pieceEnd == end &- 1 { break }
          va = pieceEnd + 1
        } while true
      }
    }
    if !ranges.isEmpty {
      for h in host where h.read || h.write || h.execute {
        if !inRanges(h.frame, h.size) { isolated = false }
      }
    }
    verdicts = [
      .soundness: sound, .accessedDirty: accessedDirty, .pageTableProtection: protected,
    ]
    if !ranges.isEmpty { verdicts[.isolation] = isolated }
  }

  static let accesses: [Access] = AccessKind.allCases.flatMap { kind in
    [Access(kind, user: false), Access(kind, user: true), Access(kind, implicit: true)]
  }

  /// SEMANTICS §1.5 rules 1–7 for a region's accumulated rights. `registers` gives the shadow's
  /// CR0/CR4/EFER (nil: the guest's own).
  static func permits(
    _ r: Region, _ access: Access, registers: ShadowPaging?, guest: GuestRegisters
  ) -> Bool {
    let cr0 = registers?.cr0 ?? guest.cr0
    let cr4 = registers?.cr4 ?? guest.cr4
    let efer = registers?.efer ?? guest.efer
    let wp = cr0 >> 16 & 1 == 1
    let smep = cr4 >> 20 & 1 == 1
    let smap = cr4 >> 21 & 1 == 1
    let pke = cr4 >> 22 & 1 == 1
    let pks = cr4 >> 24 & 1 == 1
    let nxe = efer >> 11 & 1 == 1
    let ac = guest.rflags >> 18 & 1 == 1
    let write = access.kind == .write
    let fetch = access.kind == .fetch
    if access.user && !r.user { return false }
    if access.user && write && !r.writable { return false }
    if fetch && nxe && r.executeDisable { return false }
    if !access.user && fetch && r.user && smep { return false }
    if !access.user && !fetch && r.user && smap && !(!access.implicit && ac) { return false }
    if !access.user && write && !r.writable && wp { return false }
    if !fetch && (r.user ? pke : pks) {
      let register = r.user ? guest.pkru : guest.pkrs
      let pair = register >> (r.key * 2)
      if pair & 1 == 1 { return false }
      if write && pair & 2 != 0 && (access.user || wp) { return false }
    }
    return true
  }

  /// SEMANTICS §2.7 step 4 for the final access (no mode-based execute control).
  static func hostPermits(_ h: HostRegion, _ access: Access) -> Bool {
    switch access.kind {
    case .read: h.read
    case .write: h.write
    case .fetch: h.execute
    }
  }
}

/// Bits `high`…`low` set.
private func mask(_ high: Int, _ low: Int) -> UInt64 {
  high < low ? 0 : mask(width: high - low + 1) << UInt64(low)
}

/// The low `width` bits set.
private func mask(width: Int) -> UInt64 {
  width >= 64 ? ~0 : width <= 0 ? 0 : (1 << UInt64(width)) - 1
}

/// Where a page table sits in a linear address space: its level and the first address it maps.
/// A guest table and a shadow table at the same position serve the same addresses.
struct TablePosition: Hashable {
  var level: Int
  var base: UInt64
}
