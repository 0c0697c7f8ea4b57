import Machine

/// The names of control-register, EFER and RFLAGS bits, as the manuals spell them (Intel SDM
/// Vol. 3A §2.5, §2.2.1; SEMANTICS §1.1), so that a spec can write `cr4: [PAE, SMEP]` instead of
/// `cr4: 0x100020`.
///
/// These are names only: which bits matter, and what they do, is the reference model's business.
enum ControlFlags {
  /// One register's bit names.
  struct Register {
    /// The register's name in specs: `cr0`, `cr4`, `efer`, `rflags`.
    let name: String
    /// Bit names to bit positions, in bit order.
    let bits: [(name: String, bit: Int)]
    /// Bits that are always set (RFLAGS bit 1).
    let alwaysSet: UInt64

    /// The value of a list of names; `nil` and the offending name when one is unknown.
    func value(of names: [String]) -> Result<UInt64, UnknownFlag> {
      var value = alwaysSet
      for name in names {
        guard let bit = bits.first(where: { $0.name.uppercased() == name.uppercased() })?.bit
        else { return .failure(UnknownFlag(name: name)) }
        value |= 1 << UInt64(bit)
      }
      return .success(value)
    }

    /// The names of the bits set in `value` that have names, in bit order.
    func names(in value: UInt64) -> [String] {
      bits.filter { value & (1 << UInt64($0.bit)) != 0 }.map(\.name)
    }
  }

  /// A name that is not one of the register's bits.
  struct UnknownFlag: Error {
    /// The name as written.
    let name: String
  }

  /// CR0.
  static let cr0 = Register(
    name: "cr0",
    bits: [
      ("PE", 0), ("MP", 1), ("EM", 2), ("TS", 3), ("ET", 4), ("NE", 5), ("WP", 16), ("AM", 18),
      ("NW", 29), ("CD", 30), ("PG", 31),
    ],
    alwaysSet: 0)

  /// CR4.
  static let cr4 = Register(
    name: "cr4",
    bits: [
      ("VME", 0), ("PVI", 1), ("TSD", 2), ("DE", 3), ("PSE", 4), ("PAE", 5), ("MCE", 6),
      ("PGE", 7), ("PCE", 8), ("OSFXSR", 9), ("OSXMMEXCPT", 10), ("UMIP", 11), ("LA57", 12),
      ("VMXE", 13), ("SMXE", 14), ("FSGSBASE", 16), ("PCIDE", 17), ("OSXSAVE", 18),
      ("SMEP", 20), ("SMAP", 21), ("PKE", 22), ("CET", 23), ("PKS", 24),
    ],
    alwaysSet: 0)

  /// IA32_EFER.
  static let efer = Register(
    name: "efer",
    bits: [
      ("SCE", 0), ("LME", 8), ("LMA", 10), ("NXE", 11), ("SVME", 12), ("LMSLE", 13),
      ("FFXSR", 14), ("TCE", 15),
    ],
    alwaysSet: 0)

  /// RFLAGS; bit 1 is always set.
  static let rflags = Register(
    name: "rflags",
    bits: [
      ("CF", 0), ("PF", 2), ("AF", 4), ("ZF", 6), ("SF", 7), ("TF", 8), ("IF", 9), ("DF", 10),
      ("OF", 11), ("NT", 14), ("RF", 16), ("VM", 17), ("AC", 18), ("VIF", 19), ("VIP", 20),
      ("ID", 21),
    ],
    alwaysSet: 1 << 1)

  // Bits the builder reads to check that registers agree with the paging mode.

  /// CR0.PG.
  static let paging: UInt64 = 1 << 31
  /// CR0.WP.
  static let writeProtect: UInt64 = 1 << 16
  /// CR4.PAE.
  static let physicalAddressExtension: UInt64 = 1 << 5
  /// CR4.LA57.
  static let fiveLevel: UInt64 = 1 << 12
  /// CR4.PCIDE.
  static let processContextIdentifiers: UInt64 = 1 << 17
  /// EFER.LME.
  static let longModeEnable: UInt64 = 1 << 8
  /// EFER.LMA.
  static let longModeActive: UInt64 = 1 << 10
  /// EFER.NXE.
  static let executeDisableEnable: UInt64 = 1 << 11
}

extension YAMLReader {
  /// A register value: a list of bit names (`[PG, WP]`) or a number (`0x80010011`).
  func register(_ register: ControlFlags.Register) throws(FormatError) -> UInt64 {
    guard case .sequence = node else { return try word() }
    var names: [String] = []
    for item in try list() {
      let name = try item.text()
      guard !names.contains(where: { $0.uppercased() == name.uppercased() }) else {
        throw item.error("\(name) is listed twice")
      }
      if case .failure = register.value(of: [name]) {
        throw item.error(
          unknownValueMessage(
            name, allowed: register.bits.map(\.name), what: "\(register.name) bit"))
      }
      names.append(name)
    }
    switch register.value(of: names) {
    case .success(let value): return value
    case .failure(let unknown): throw error("unknown \(register.name) bit \(unknown.name)")
    }
  }
}
