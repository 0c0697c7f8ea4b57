import Machine

/// Paging entries, and the codes an outcome reports, decoded into the manuals' names: what
/// `nestcheck explain` prints.
///
/// The bit positions are the model's own (``X86Bit``, ``EPTBit``, ``ErrorCodeBit``), and which
/// bits are reserved at a level is asked of the model's formats (``X86Format``, ``EPTFormat``)
/// bit by bit, so a description cannot disagree with the walk it describes.

/// The two entry formats: x86-64 (guest tables, and AMD's nested tables) and Intel EPT.
public enum EntryFormatKind: String, CaseIterable, Hashable, Sendable {
  /// The x86-64 paging-entry format (SEMANTICS §1.3).
  case x86
  /// The Intel EPT entry format (SEMANTICS §2.2).
  case ept
}

/// One named field of a paging entry and its value.
public struct EntryField: Hashable, Sendable {
  /// The manuals' name: `P`, `R/W`, `U/S`, `PWT`, `PCD`, `A`, `D`, `PS`, `PAT`, `G`, `XD`,
  /// `key`; for EPT `R`, `W`, `X`, `memtype`, `IPAT`, `PS`, `A`, `D`, `XU`, `SVE`.
  public var name: String
  /// The highest bit of the field.
  public var high: Int
  /// The lowest bit of the field.
  public var low: Int
  /// The field's value, shifted down to bit 0.
  public var value: UInt64
  /// The name of the value, where the field encodes one: an EPT memory type (`WB`, `UC`, …,
  /// `reserved`).
  public var valueName: String?

  /// Whether the field is a single bit.
  public var isFlag: Bool { high == low }
}

/// A paging entry decoded at its level: its named fields, where it points, and what is wrong
/// with it on its own.
public struct EntryDescription: Hashable, Sendable {
  /// The entry's format.
  public var format: EntryFormatKind
  /// The level it was read at: 5 (PML5E) down to 1 (PTE).
  public var level: Int
  /// The level's name, prefixed by `EPT ` or `NPT ` for nested entries: `PML4E`, `EPT PDE`.
  public var levelName: String
  /// The entry's value.
  public var value: UInt64
  /// Whether the entry is present (x86: P = 1; EPT: bits 2:0 not all zero, or XU with
  /// mode-based execute control). The other bits of a not-present entry are ignored.
  public var present: Bool
  /// Whether the entry is present and maps a page (a PTE, or a PDE or PDPTE with bit 7).
  public var leaf: Bool
  /// The fields that have a meaning at this level, lowest bit first; only P for a not-present
  /// x86 entry, only R, W, X for a not-present EPT entry.
  public var fields: [EntryField]
  /// The next table's address (non-leaf) or the page frame's (leaf); zero when not present.
  public var address: UInt64
  /// The bits reserved at this level and leafness under the machine's configuration.
  public var reservedMask: UInt64
  /// The reserved bits that are set (zero when not present: they are never examined).
  public var reservedBitsSet: UInt64
  /// The rules the entry breaks by itself, when the walk examines it: ``Rule/reservedBit``
  /// for x86; ``Rule/eptWriteWithoutRead``, ``Rule/eptExecuteOnlyUnsupported``,
  /// ``Rule/eptReservedBit``, ``Rule/eptBadMemoryType`` for EPT.
  public var problems: [Rule]

  /// The field named `name`, if it has a meaning at this level.
  public func field(_ name: String) -> EntryField? { fields.first { $0.name == name } }
}

/// The names of the levels, from 1 (PTE) to 5 (PML5E).
private let levelNames = ["PTE", "PDE", "PDPTE", "PML4E", "PML5E"]

/// The name of a paging level: `PTE`, `PDE`, `PDPTE`, `PML4E`, `PML5E`; `level N` beyond.
public func pagingLevelName(_ level: Int) -> String {
  (1...5).contains(level) ? levelNames[level - 1] : "level \(level)"
}

/// The EPT memory types (SEMANTICS §2.2): 0 UC, 1 WC, 4 WT, 5 WP, 6 WB; 2, 3 and 7 reserved.
public func eptMemoryTypeName(_ type: UInt64) -> String {
  switch type {
  case 0: "UC"
  case 1: "WC"
  case 4: "WT"
  case 5: "WP"
  case 6: "WB"
  default: "reserved"
  }
}

extension ConcreteModel {
  /// Decodes the entry a memory reference read, in the format of its dimension.
  public func describe(_ reference: MemoryReference<Concrete>) -> EntryDescription {
    describeEntry(reference.value, stage: reference.stage, level: reference.level)
  }

  /// Decodes `value` as an entry at `level` of the guest tables (`stage` ``Stage/guest``) or
  /// of the nested tables (any other stage), under this machine's configuration.
  public func describeEntry(_ value: UInt64, stage: Stage, level: Int) -> EntryDescription {
    let d = Concrete()
    let configuration = state.configuration
    if stage != .guest {
      switch (state.nested, configuration.nested) {
      case (
        .ept(_, _, let modeBasedExecute), .ept(let levels, let bits, let executeOnly, let gigabytes)
      ):
        let format = EPTFormat<Concrete>(
          levels: levels, addressBits: bits, executeOnly: executeOnly, gigabytePages: gigabytes,
          modeBasedExecute: modeBasedExecute)
        return describeEPT(d, format, value, level: level)
      case (.npt(let root, let executeDisable), .npt(let levels, let bits)):
        let stage = NPTStage(
          d, levels: levels, addressBits: bits, root: root, executeDisable: executeDisable)
        return describeX86(d, stage.format, value, level: level, prefix: "NPT ")
      default:
        break
      }
    }
    let format = X86Format<Concrete>(
      levels: configuration.guestLevels, addressBits: configuration.guestAddressBits,
      vendor: configuration.vendor, gigabytePages: configuration.guestGigabytePages,
      executeDisable: state.guest.executeDisable)
    return describeX86(d, format, value, level: level, prefix: "")
  }

  /// The names of the accessed/dirty bits among `bits` of a `stage` entry (an
  /// ``Update``'s `bits`): `A`, `D`, in bit order.
  public func accessedDirtyNames(_ bits: UInt64, stage: Stage) -> [String] {
    var ept = false
    if stage != .guest, case .ept = state.configuration.nested { ept = true }
    let accessed = ept ? EPTBit.accessed : X86Bit.accessed
    let dirty = ept ? EPTBit.dirty : X86Bit.dirty
    return [(accessed, "A"), (dirty, "D")].compactMap { bit, name in
      bits >> UInt64(bit) & 1 == 1 ? name : nil
    }
  }

  /// The name of the level of a `stage` entry: `PML4E`, `EPT PML4E`, `NPT PDE`.
  public func levelName(stage: Stage, level: Int) -> String {
    guard stage != .guest else { return pagingLevelName(level) }
    switch state.configuration.nested {
    case .none: return pagingLevelName(level)
    case .ept: return "EPT " + pagingLevelName(level)
    case .npt: return "NPT " + pagingLevelName(level)
    }
  }
}

/// A field reading bits `high`…`low` of `value`.
private func field(_ name: String, _ high: Int, _ low: Int, of value: UInt64) -> EntryField {
  EntryField(
    name: name, high: high, low: low, value: value >> UInt64(low) & mask(width: high - low + 1))
}

/// Whether each bit of an entry is reserved, asked of the model one bit at a time.
private func reservedMask(_ isReserved: (UInt64) -> Bool) -> UInt64 {
  (0..<64).reduce(0) { mask, bit in isReserved(1 << UInt64(bit)) ? mask | 1 << UInt64(bit) : mask }
}

private func describeX86(
  _ d: Concrete, _ format: X86Format<Concrete>, _ value: UInt64, level: Int, prefix: String
) -> EntryDescription {
  let name = prefix + pagingLevelName(level)
  let present = format.isPresent(d, value)
  guard present else {
    return EntryDescription(
      format: .x86, level: level, levelName: name, value: value, present: false, leaf: false,
      fields: [field("P", X86Bit.present, X86Bit.present, of: value)], address: 0,
      reservedMask: 0, reservedBitsSet: 0, problems: [])
  }
  let leaf = format.isLeaf(d, value, level: level)
  var fields = [
    field("P", X86Bit.present, X86Bit.present, of: value),
    field("R/W", X86Bit.writable, X86Bit.writable, of: value),
    field("U/S", X86Bit.user, X86Bit.user, of: value),
    field("PWT", X86Bit.writeThrough, X86Bit.writeThrough, of: value),
    field("PCD", X86Bit.cacheDisable, X86Bit.cacheDisable, of: value),
    field("A", X86Bit.accessed, X86Bit.accessed, of: value),
  ]
  if leaf {
    fields.append(field("D", X86Bit.dirty, X86Bit.dirty, of: value))
    fields.append(
      level == 1
        ? field("PAT", X86Bit.pageAttributeSmall, X86Bit.pageAttributeSmall, of: value)
        : field("PS", X86Bit.pageSize, X86Bit.pageSize, of: value))
    fields.append(field("G", X86Bit.global, X86Bit.global, of: value))
    if level > 1 {
      fields.append(
        field("PAT", X86Bit.pageAttributeLarge, X86Bit.pageAttributeLarge, of: value))
    }
    fields.append(field("key", X86Bit.keyHigh, X86Bit.keyLow, of: value))
  } else if level == 2 || level == 3 {
    fields.append(field("PS", X86Bit.pageSize, X86Bit.pageSize, of: value))
  }
  if format.executeDisable {
    fields.append(field("XD", X86Bit.executeDisable, X86Bit.executeDisable, of: value))
  }
  let shift = leaf ? indexShift(level: level) : 12
  let reserved = reservedMask { format.isMalformed(d, $0, level: level, leaf: leaf) }
  let set = value & reserved
  return EntryDescription(
    format: .x86, level: level, levelName: name, value: value, present: true, leaf: leaf,
    fields: fields, address: value & mask(format.addressBits - 1, shift),
    reservedMask: reserved, reservedBitsSet: set, problems: set != 0 ? [.reservedBit] : [])
}

private func describeEPT(
  _ d: Concrete, _ format: EPTFormat<Concrete>, _ value: UInt64, level: Int
) -> EntryDescription {
  let name = "EPT " + pagingLevelName(level)
  var fields = [
    field("R", EPTBit.read, EPTBit.read, of: value),
    field("W", EPTBit.write, EPTBit.write, of: value),
    field("X", EPTBit.execute, EPTBit.execute, of: value),
  ]
  guard format.isPresent(d, value) else {
    return EntryDescription(
      format: .ept, level: level, levelName: name, value: value, present: false, leaf: false,
      fields: fields, address: 0, reservedMask: 0, reservedBitsSet: 0, problems: [])
  }
  let leaf = format.isLeaf(d, value, level: level)
  if leaf {
    var type = field("memtype", EPTBit.memoryTypeHigh, EPTBit.memoryTypeLow, of: value)
    type.valueName = eptMemoryTypeName(type.value)
    fields.append(type)
    fields.append(field("IPAT", EPTBit.ignorePAT, EPTBit.ignorePAT, of: value))
  }
  if level == 2 || level == 3 {
    fields.append(field("PS", EPTBit.largePage, EPTBit.largePage, of: value))
  }
  fields.append(field("A", EPTBit.accessed, EPTBit.accessed, of: value))
  if leaf { fields.append(field("D", EPTBit.dirty, EPTBit.dirty, of: value)) }
  fields.append(field("XU", EPTBit.userExecute, EPTBit.userExecute, of: value))
  fields.append(field("SVE", EPTBit.suppressVE, EPTBit.suppressVE, of: value))

  let shift = leaf ? indexShift(level: level) : 12
  let reserved = reservedMask {
    format.misconfiguration(d, $0, level: level, leaf: leaf).reserved
  }
  let m = format.misconfiguration(d, value, level: level, leaf: leaf)
  let conditions: [(Bool, Rule)] = [
    (m.writeWithoutRead, .eptWriteWithoutRead), (m.executeOnly, .eptExecuteOnlyUnsupported),
    (m.reserved, .eptReservedBit), (m.memoryType, .eptBadMemoryType),
  ]
  let problems = conditions.compactMap { fires, rule in fires ? rule : nil }
  return EntryDescription(
    format: .ept, level: level, levelName: name, value: value, present: true, leaf: leaf,
    fields: fields, address: value & mask(format.addressBits - 1, shift),
    reservedMask: reserved, reservedBitsSet: value & reserved, problems: problems)
}

// MARK: - Outcome codes

/// The bits of an EPT violation's exit qualification (SEMANTICS §2.6) that the model sets.
enum QualificationBit {
  static let read = 0
  static let write = 1
  static let fetch = 2
  static let readable = 3
  static let writable = 4
  static let executable = 5
  static let userExecutable = 6
  static let linearValid = 7
  static let finalTranslation = 8
  static let userLinear = 9
  static let writableLinear = 10
  static let executableLinear = 11
}

/// The bits of EXITINFO1 beyond the page-fault error code (SEMANTICS §3.3).
enum ExitInfo1Bit {
  static let finalAddress = 32
  static let pageTable = 33
}

/// The names of the set bits of `code` from a table of (bit, name); unnamed set bits as
/// `bit N`.
private func names(of code: UInt64, _ table: [(Int, String)]) -> [String] {
  var result: [String] = []
  var unnamed = code
  for (bit, name) in table where code >> UInt64(bit) & 1 == 1 {
    result.append(name)
    unnamed &= ~(1 << UInt64(bit))
  }
  for bit in 0..<64 where unnamed >> UInt64(bit) & 1 == 1 { result.append("bit \(bit)") }
  return result
}

extension Outcome {
  /// The names of the bits set in the code the outcome reports, in bit order:
  ///
  /// - `#PF` error code (§1.6): `P`, `W/R`, `U/S`, `RSVD`, `I/D`, `PK`;
  /// - EPT exit qualification (§2.6): `read`, `write`, `fetch` (the access), `R`, `W`, `X`,
  ///   `XU` (the rights over the EPT entries read), `linear-valid`, then `final` for the final
  ///   translation or `paging-entry` for a guest paging-entry access, and with advanced
  ///   reporting `user-linear`, `writable-linear`, `executable-linear`;
  /// - EXITINFO1 of `#NPF` (§3.3): `P`, `RW`, `US`, `RSV`, `ID`, `PK`, then `final` (bit 32)
  ///   or `page-table` (bit 33).
  ///
  /// Set bits without a name appear as `bit N`. Outcomes without a code give an empty list.
  public var codeBitNames: [String] {
    switch self {
    case .translated, .generalProtection, .eptMisconfiguration:
      return []
    case .pageFault(let code, _):
      return names(
        of: code,
        [
          (ErrorCodeBit.present, "P"), (ErrorCodeBit.write, "W/R"), (ErrorCodeBit.user, "U/S"),
          (ErrorCodeBit.reserved, "RSVD"), (ErrorCodeBit.fetch, "I/D"), (ErrorCodeBit.key, "PK"),
        ])
    case .eptViolation(let qualification, _, _):
      var result = names(
        of: qualification,
        [
          (QualificationBit.read, "read"), (QualificationBit.write, "write"),
          (QualificationBit.fetch, "fetch"), (QualificationBit.readable, "R"),
          (QualificationBit.writable, "W"), (QualificationBit.executable, "X"),
          (QualificationBit.userExecutable, "XU"), (QualificationBit.linearValid, "linear-valid"),
          (QualificationBit.finalTranslation, "final"),
          (QualificationBit.userLinear, "user-linear"),
          (QualificationBit.writableLinear, "writable-linear"),
          (QualificationBit.executableLinear, "executable-linear"),
        ])
      let linearValid = qualification >> UInt64(QualificationBit.linearValid) & 1 == 1
      let final = qualification >> UInt64(QualificationBit.finalTranslation) & 1 == 1
      if linearValid, !final, let at = result.firstIndex(of: "linear-valid") {
        result.insert("paging-entry", at: at + 1)
      }
      return result
    case .nestedPageFault(let info1, _):
      return names(
        of: info1,
        [
          (ErrorCodeBit.present, "P"), (ErrorCodeBit.write, "RW"), (ErrorCodeBit.user, "US"),
          (ErrorCodeBit.reserved, "RSV"), (ErrorCodeBit.fetch, "ID"), (ErrorCodeBit.key, "PK"),
          (ExitInfo1Bit.finalAddress, "final"), (ExitInfo1Bit.pageTable, "page-table"),
        ])
    }
  }
}
