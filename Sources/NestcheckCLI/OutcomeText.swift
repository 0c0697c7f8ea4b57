import Machine
import ReferenceModel

/// How `translate` and `explain` present outcomes, rules and accesses: one place, so both
/// commands (and their JSON) say the same thing the same way.
enum OutcomeText {
  /// One line: the outcome with its code decoded into bit names.
  ///
  /// `translated: host physical 0x110122123`,
  /// `#PF: error code 0x7 (P W/R U/S), CR2 0x7f0000001234`, and so on (docs/cli.md).
  static func line(_ outcome: Outcome) -> String {
    let bits = outcome.codeBitNames
    let decoded = " (" + (bits.isEmpty ? "none" : bits.joined(separator: " ")) + ")"
    switch outcome {
    case .translated(let hpa):
      return "translated: host physical \(hex(hpa))"
    case .generalProtection:
      return "#GP(0): non-canonical linear address, nothing walked"
    case .pageFault(let code, let address):
      return "#PF: error code \(hex(code))\(decoded), CR2 \(hex(address))"
    case .eptViolation(let qualification, let gpa, let gla):
      let linear = gla.map { ", guest linear \(hex($0))" } ?? ""
      return "EPT violation: qualification \(hex(qualification))\(decoded), "
        + "guest physical \(hex(gpa))\(linear)"
    case .eptMisconfiguration(let gpa):
      return "EPT misconfiguration: guest physical \(hex(gpa))"
    case .nestedPageFault(let info1, let info2):
      return "#NPF: EXITINFO1 \(hex(info1))\(decoded), EXITINFO2 \(hex(info2))"
    }
  }

  /// The outcome as JSON: `result` (``Outcome/kindName``), the values it reports under the
  /// trace format's names, and `bits`, the names of the code's set bits (docs/cli.md).
  static func json(_ outcome: Outcome) -> JSON {
    var members: [(key: String, value: JSON)] = [("result", .string(outcome.kindName))]
    switch outcome {
    case .translated(let hpa):
      members.append(("hostPhysical", .hex(hpa)))
    case .generalProtection:
      break
    case .pageFault(let code, let address):
      members += [("errorCode", .hex(code)), ("linearAddress", .hex(address))]
    case .eptViolation(let qualification, let gpa, let gla):
      members += [("qualification", .hex(qualification)), ("guestPhysical", .hex(gpa))]
      if let gla { members.append(("guestLinear", .hex(gla))) }
    case .eptMisconfiguration(let gpa):
      members.append(("guestPhysical", .hex(gpa)))
    case .nestedPageFault(let info1, let info2):
      members += [("exitInfo1", .hex(info1)), ("exitInfo2", .hex(info2))]
    }
    switch outcome {
    case .pageFault, .eptViolation, .nestedPageFault:
      members.append(("bits", .array(outcome.codeBitNames.map { .string($0) })))
    default:
      break
    }
    return .object(members)
  }

  /// The rule's stable name in JSON: its Swift case name, such as `notPresent`.
  static func name(_ rule: Rule) -> String { String(describing: rule) }

  /// The stage's stable name in JSON: `none`, `guest`, `nested-table`, `nested-final`.
  static func name(_ stage: Stage) -> String {
    switch stage {
    case .none: "none"
    case .guest: "guest"
    case .nestedTable: "nested-table"
    case .nestedFinal: "nested-final"
    }
  }

  /// `user-mode write`, `supervisor-mode read`, `implicit supervisor-mode read`.
  static func describe(_ access: Access) -> String {
    (access.user
      ? "user-mode " : access.implicit ? "implicit supervisor-mode " : "supervisor-mode ")
      + access.kind.rawValue
  }

  /// The access as JSON: `{"kind": "write", "user": true, "implicit": false}`.
  static func json(_ access: Access) -> JSON {
    .object([
      "kind": .string(access.kind.rawValue), "user": .bool(access.user),
      "implicit": .bool(access.implicit),
    ])
  }

  /// A page size in words: `4 KiB`, `2 MiB`, `1 GiB`.
  static func size(_ bytes: UInt64) -> String {
    switch bytes {
    case 1 << 30: "1 GiB"
    case 1 << 21: "2 MiB"
    case 1 << 12: "4 KiB"
    default: "\(bytes) bytes"
    }
  }
}

/// What was decided, and where: the rule, the dimension, the level.
struct Decision {
  var rule: Rule
  var stage: Stage
  var level: Int

  init(_ translation: Translation<Concrete>) {
    rule = translation.decidingRule
    stage = translation.decidingStage
    level = Int(translation.level)
  }

  /// The rule's summary, and where it fired when that is one entry:
  /// `entry not present (§1.7 step 4b): guest PTE`,
  /// `EPT entry not present (§2.3 V1): EPT PTE, in the nested walk of a guest paging entry`.
  func text(_ model: ConcreteModel) -> String {
    let entry = model.levelName(stage: stage, level: level)
    switch stage {
    case .none:
      return rule.summary
    case .guest:
      return rule == .notPresent || rule == .reservedBit
        ? rule.summary + ": guest " + entry : rule.summary + ": over the guest path"
    case .nestedTable:
      return rule.summary + ": \(entry), in the nested walk of a guest paging entry"
    case .nestedFinal:
      return rule.summary + ": \(entry), in the nested walk of the final guest physical address"
    }
  }

  var json: JSON {
    .object([
      "rule": .string(OutcomeText.name(rule)), "summary": .string(rule.summary),
      "stage": .string(OutcomeText.name(stage)), "level": .integer(level),
    ])
  }
}
