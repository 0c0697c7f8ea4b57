import Machine

/// A coarse class of an observation, for the coverage a campaign reports ("outcome classes
/// covered"): the result's kind with its telling bits — a #PF's P, W/R, U/S, RSVD, I/D and PK
/// bits; an EPT violation's access bits and whether it was a paging-entry access; a #NPF's P,
/// RW, RSV and stage bits; a batch's status; a refusal's reason.
public enum OutcomeClass {
  /// The class of `result`, as a short stable name.
  public static func of(_ result: TraceResult) -> String {
    switch result {
    case .completed: return "completed"
    case .refused(let reason): return "refused:" + reason.rawValue
    case .batch(let status, _): return status == 0 ? "batch:ok" : "batch:stopped"
    case .outcome(let outcome):
      switch outcome {
      case .translated: return "translated"
      case .generalProtection: return "#GP"
      case .pageFault(let code, _):
        let names = ["P", "W", "U", "RSVD", "I", "PK"]
        let bits = names.indices.filter { code >> UInt64($0) & 1 == 1 }.map { names[$0] }
        return "#PF:" + (bits.isEmpty ? "-" : bits.joined(separator: ","))
      case .eptViolation(let qualification, _, _):
        let access = ["r", "w", "x"].indices.filter { qualification >> UInt64($0) & 1 == 1 }
          .map { ["r", "w", "x"][$0] }.joined()
        let stage = qualification >> 8 & 1 == 1 ? "final" : "paging-entry"
        return "EPT-violation:\(access):\(stage)"
      case .eptMisconfiguration: return "EPT-misconfiguration"
      case .nestedPageFault(let info, _):
        let names = ["P", "RW", "US", "RSV", "ID"]
        let bits = names.indices.filter { info >> UInt64($0) & 1 == 1 }.map { names[$0] }
        let stage = info >> 32 & 1 == 1 ? "final" : "paging-entry"
        return "#NPF:" + bits.joined(separator: ",") + ":" + stage
      }
    }
  }
}
