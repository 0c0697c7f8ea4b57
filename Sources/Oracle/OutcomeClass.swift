import Machine

/// A coarse class of an observation, for the coverage a campaign reports ("outcome classes
/// covered"): the result's kind with its telling bits — a #PF's P, W/R, U/S, RSVD, I/D and PK
/// bits; an EPT violation's access bits and whether it was a paging-entry access; a #NPF's P,
/// RW, RSV and stage bits; a batch's status; a refusal's reason.
public enum OutcomeClass {
  /// The class of `result`, as a short stable name.
  public static func of(_ result: TraceResult) -> String { Key(result).name }

  /// A class in a form that is cheap to make and to hash, for counting classes per operation;
  /// ``name`` spells it. Two results have the same key exactly when they have the same name.
  public struct Key: Hashable, Sendable {
    /// Which kind of result.
    enum Kind: UInt8, Hashable, Sendable {
      case completed, refused, batchOK, batchStopped, translated, generalProtection
      case pageFault, eptViolation, eptMisconfiguration, nestedPageFault
    }

    let kind: Kind
    /// The telling bits of the kind (a refusal: its reason's index).
    let bits: UInt64

    /// The class of `result`.
    public init(_ result: TraceResult) {
      switch result {
      case .completed: (kind, bits) = (.completed, 0)
      case .refused(let reason):
        (kind, bits) = (.refused, UInt64(Refusal.allCases.firstIndex(of: reason) ?? 0))
      case .batch(let status, _): (kind, bits) = (status == 0 ? .batchOK : .batchStopped, 0)
      case .outcome(let outcome):
        switch outcome {
        case .translated: (kind, bits) = (.translated, 0)
        case .generalProtection: (kind, bits) = (.generalProtection, 0)
        case .pageFault(let code, _): (kind, bits) = (.pageFault, code & 0x3F)
        case .eptViolation(let qualification, _, _):
          (kind, bits) = (.eptViolation, qualification & 0x107)
        case .eptMisconfiguration: (kind, bits) = (.eptMisconfiguration, 0)
        case .nestedPageFault(let info, _): (kind, bits) = (.nestedPageFault, info & 0x1_0000_001F)
        }
      }
    }

    /// The class's name: `translated`, `#PF:P,W,U`, `EPT-violation:r:final`, …
    public var name: String {
      func flags(_ names: [String], _ value: UInt64) -> [String] {
        names.indices.filter { value >> UInt64($0) & 1 == 1 }.map { names[$0] }
      }
      switch kind {
      case .completed: return "completed"
      case .refused:
        let reasons = Refusal.allCases
        return "refused:" + reasons[min(Int(bits), reasons.count - 1)].rawValue
      case .batchOK: return "batch:ok"
      case .batchStopped: return "batch:stopped"
      case .translated: return "translated"
      case .generalProtection: return "#GP"
      case .pageFault:
        let set = flags(["P", "W", "U", "RSVD", "I", "PK"], bits)
        return "#PF:" + (set.isEmpty ? "-" : set.joined(separator: ","))
      case .eptViolation:
        let access = flags(["r", "w", "x"], bits).joined()
        let stage = bits >> 8 & 1 == 1 ? "final" : "paging-entry"
        return "EPT-violation:\(access):\(stage)"
      case .eptMisconfiguration: return "EPT-misconfiguration"
      case .nestedPageFault:
        let set = flags(["P", "RW", "US", "RSV", "ID"], bits)
        let stage = bits >> 32 & 1 == 1 ? "final" : "paging-entry"
        return "#NPF:" + set.joined(separator: ",") + ":" + stage
      }
    }
  }
}
