import Machine

/// The process protocol's lines, written and read without building JSON trees: the fast path of
/// ``ProcessTarget``.
///
/// The writer produces exactly the text of ``TraceOperation/json`` (tests compare the two on
/// every kind of operation). The reader accepts observations in the form
/// ``TraceObservation/json`` writes them — fields in that order, numbers as lower-case `0x`
/// strings — and returns `nil` for anything else, which the caller then reads with the full
/// JSON reader; so the fast path can only ever agree with it.
enum AdapterWire {
  // MARK: - Writing operations

  /// Appends `operation`'s JSON line (without the newline) to `out`: every kind of operation,
  /// since a fuzzing mix draws flushes, register writes and batches often enough that building
  /// a JSON tree for them costs more than the whole exchange.
  static func append(_ operation: TraceOperation, to out: inout [UInt8]) {
    switch operation {
    case .access(let address, let access):
      out.append(contentsOf: #"{"op":"access","address":"#.utf8)
      hex(address, to: &out)
      out.append(contentsOf: #","kind":""#.utf8)
      out.append(contentsOf: access.kind.rawValue.utf8)
      out.append(34)
      if access.user { out.append(contentsOf: #","user":true"#.utf8) }
      if access.implicit { out.append(contentsOf: #","implicit":true"#.utf8) }
      out.append(125)
    case .writeGuest(let address, let value), .writeHost(let address, let value):
      out.append(contentsOf: #"{"op":""#.utf8)
      out.append(contentsOf: operation.adapterOperationName.utf8)
      out.append(contentsOf: #"","address":"#.utf8)
      hex(address, to: &out)
      out.append(contentsOf: #","value":"#.utf8)
      hex(value, to: &out)
      out.append(125)
    case .writeRegister(let register, let value):
      out.append(contentsOf: #"{"op":"write-register","register":""#.utf8)
      out.append(contentsOf: register.rawValue.utf8)
      out.append(contentsOf: #"","value":"#.utf8)
      hex(value, to: &out)
      out.append(125)
    case .invlpg(let address):
      out.append(contentsOf: #"{"op":"invlpg","address":"#.utf8)
      hex(address, to: &out)
      out.append(125)
    case .invpcid(let type, let pcid, let address):
      out.append(contentsOf: #"{"op":"invpcid","type":""#.utf8)
      out.append(contentsOf: type.rawValue.utf8)
      out.append(contentsOf: #"","pcid":"#.utf8)
      hex(pcid, to: &out)
      out.append(contentsOf: #","address":"#.utf8)
      hex(address, to: &out)
      out.append(125)
    case .invept(let type, let eptp):
      out.append(contentsOf: #"{"op":"invept","type":""#.utf8)
      out.append(contentsOf: type.rawValue.utf8)
      out.append(contentsOf: #"","eptp":"#.utf8)
      hex(eptp, to: &out)
      out.append(125)
    case .invvpid(let type, let vpid, let address):
      out.append(contentsOf: #"{"op":"invvpid","type":""#.utf8)
      out.append(contentsOf: type.rawValue.utf8)
      out.append(contentsOf: #"","vpid":"#.utf8)
      hex(vpid, to: &out)
      out.append(contentsOf: #","address":"#.utf8)
      hex(address, to: &out)
      out.append(125)
    case .paravirtualBatch(let updates):
      out.append(contentsOf: #"{"op":"paravirtual-batch","updates":["#.utf8)
      for (index, update) in updates.enumerated() {
        if index > 0 { out.append(44) }
        out.append(contentsOf: #"{"entry":"#.utf8)
        hex(update.entry, to: &out)
        out.append(contentsOf: #","value":"#.utf8)
        hex(update.value, to: &out)
        if update.preserveAccessedDirty {
          out.append(contentsOf: #","preserveAccessedDirty":true"#.utf8)
        }
        out.append(125)
      }
      out.append(contentsOf: "]}".utf8)
    }
  }

  private static let digits = Array("0123456789abcdef".utf8)

  /// `"0x…"`, lower-case, no leading zeros.
  static func hex(_ value: UInt64, to out: inout [UInt8]) {
    out.append(contentsOf: #""0x"#.utf8)
    var shift = 60
    while shift > 0 && (value >> UInt64(shift)) & 0xF == 0 { shift -= 4 }
    while shift >= 0 {
      out.append(digits[Int((value >> UInt64(shift)) & 0xF)])
      shift -= 4
    }
    out.append(34)
  }

  // MARK: - Reading observations

  /// Reads an observation line in canonical form; `nil` if it is in any other form (which
  /// does not make it wrong: the full reader decides).
  static func observation(_ line: [UInt8]) -> TraceObservation? {
    var reader = Reader(line)
    guard reader.literal(#"{"result":""#) else { return nil }
    let result: TraceResult
    if reader.literal(#"translated","hostPhysical":"#) {
      guard let address = reader.hex() else { return nil }
      result = .outcome(.translated(hostPhysical: address))
    } else if reader.literal(#"page-fault","errorCode":"#) {
      guard let code = reader.hex(), reader.literal(#","linearAddress":"#),
        let address = reader.hex()
      else { return nil }
      result = .outcome(.pageFault(errorCode: code, linearAddress: address))
    } else if reader.literal(#"completed""#) {
      result = .completed
    } else if reader.literal(#"general-protection""#) {
      result = .outcome(.generalProtection)
    } else if reader.literal(#"ept-violation","qualification":"#) {
      guard let qualification = reader.hex(), reader.literal(#","guestPhysical":"#),
        let gpa = reader.hex()
      else { return nil }
      var gla: UInt64?
      if reader.literal(#","guestLinear":"#) {
        guard let linear = reader.hex() else { return nil }
        gla = linear
      }
      result = .outcome(
        .eptViolation(qualification: qualification, guestPhysical: gpa, guestLinear: gla))
    } else if reader.literal(#"ept-misconfiguration","guestPhysical":"#) {
      guard let gpa = reader.hex() else { return nil }
      result = .outcome(.eptMisconfiguration(guestPhysical: gpa))
    } else if reader.literal(#"nested-page-fault","exitInfo1":"#) {
      guard let info1 = reader.hex(), reader.literal(#","exitInfo2":"#), let info2 = reader.hex()
      else { return nil }
      result = .outcome(.nestedPageFault(exitInfo1: info1, exitInfo2: info2))
    } else {
      return nil  // batches, refusals, protocol messages: the full reader
    }
    var exits: [VMExitReason] = []
    if reader.literal(#","exits":["#) {
      repeat {
        guard let reason = reader.exitReason() else { return nil }
        exits.append(reason)
      } while reader.literal(",")
      guard reader.literal("]") else { return nil }
    }
    guard reader.literal("}"), reader.atEnd else { return nil }
    return TraceObservation(result, exits: exits)
  }

  /// A cursor over a line's bytes.
  private struct Reader {
    let bytes: [UInt8]
    var index = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    var atEnd: Bool { index == bytes.count }

    /// Consumes `text` if the line continues with it.
    mutating func literal(_ text: StaticString) -> Bool {
      let count = text.utf8CodeUnitCount
      guard bytes.count - index >= count else { return false }
      let start = text.utf8Start
      for offset in 0..<count where bytes[index + offset] != start[offset] { return false }
      index += count
      return true
    }

    /// Consumes `"0x…"` with 1 to 16 lower-case hexadecimal digits, no leading zero.
    mutating func hex() -> UInt64? {
      guard literal(#""0x"#) else { return nil }
      var value: UInt64 = 0
      var count = 0
      while index < bytes.count, bytes[index] != 34 {
        let byte = bytes[index]
        let digit: UInt64
        switch byte {
        case 48...57: digit = UInt64(byte - 48)
        case 97...102: digit = UInt64(byte - 87)
        default: return nil
        }
        if count == 1 && value == 0 { return nil }  // a leading zero: not canonical
        guard count < 16 else { return nil }
        value = value << 4 | digit
        count += 1
        index += 1
      }
      guard count > 0, literal(#"""#) else { return nil }
      return value
    }

    /// Consumes one quoted exit name.
    mutating func exitReason() -> VMExitReason? {
      guard literal(#"""#) else { return nil }
      let start = index
      while index < bytes.count, bytes[index] != 34 { index += 1 }
      guard index < bytes.count else { return nil }
      let name = String(decoding: bytes[start..<index], as: UTF8.self)
      index += 1
      return VMExitReason(rawValue: name)
    }
  }
}
