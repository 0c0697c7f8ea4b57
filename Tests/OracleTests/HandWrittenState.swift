import Machine

/// The hand-written machines of the oracle's narrow-case tests: a 4-level guest (CR3 0x1000,
/// long mode) over 4-level EPT on a processor with 46 physical-address bits and 1-GiB pages,
/// execute-only EPT and no mode-based execute. A test gives what its case is about — the EPTP,
/// CR0, CR4, the host ranges and the memory words — and reads the rest here once.
enum HandWrittenState {
  /// The state, through the state format's own reader (docs/state-format.md).
  static func ept(
    eptp: UInt64, cr0: UInt64 = 0x8001_0011, cr4: UInt64,
    hostRange: (base: UInt64, size: UInt64)? = nil, memory: [UInt64: UInt64]
  ) throws -> MachineState {
    func hex(_ value: UInt64) -> String { "\"0x\(String(value, radix: 16))\"" }
    let words = memory.keys.sorted().map { "\(hex($0)): \(hex(memory[$0] ?? 0))" }
    let ranges = hostRange.map {
      ", \"hostRanges\": [{\"base\": \(hex($0.base)), \"size\": \(hex($0.size))}]"
    }
    let text = """
      {"format": "nestcheck-state", "version": 1,
       "processor": {"vendor": "intel", "physicalAddressBits": 46, "gigabytePages": true},
       "guest": {"cr0": \(hex(cr0)), "cr3": "0x1000", "cr4": \(hex(cr4)), "efer": "0xd00",
                 "rflags": "0x2", "pkru": "0x0", "pkrs": "0x0"},
       "nested": {"kind": "ept", "eptp": \(hex(eptp)), "physicalAddressBits": 46,
                  "executeOnly": true, "gigabytePages": true, "modeBasedExecute": false}\
      \(ranges ?? ""),
       "memory": {\(words.joined(separator: ", "))}}
      """
    return try MachineState.load(json: text, file: "hand-written state")
  }
}
