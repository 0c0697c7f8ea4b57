/// What the guest, or the hypervisor, observes of one access: the vocabulary in which the
/// reference model, the fast MMU and any external implementation report their results.
///
/// An outcome carries exactly what the architecture makes visible: the host physical address of
/// a successful access, or the exception or VM exit with the values it reports. Anything richer
/// (the walk, the rights, the page size) belongs to the implementation that produced it.
public enum Outcome: Hashable, Sendable {
  /// The access completes at this host physical address.
  case translated(hostPhysical: UInt64)
  /// `#GP(0)`: the guest virtual address is not canonical (SEMANTICS §1.2). No walk happened.
  case generalProtection
  /// A guest `#PF` with its error code (SEMANTICS §1.6) and CR2, the faulting linear address.
  case pageFault(errorCode: UInt64, linearAddress: UInt64)
  /// An EPT violation VM exit (reason 48) with its exit qualification (SEMANTICS §2.6), the
  /// guest-physical address that faulted and, when qualification bit 7 is set, the guest-linear
  /// address being translated.
  case eptViolation(qualification: UInt64, guestPhysical: UInt64, guestLinear: UInt64?)
  /// An EPT misconfiguration VM exit (reason 49); only the guest-physical address is reported.
  case eptMisconfiguration(guestPhysical: UInt64)
  /// A `#VMEXIT(NPF)` with EXITINFO1 (error code, bits 32 and 33) and EXITINFO2, the faulting
  /// guest-physical address (SEMANTICS §3.3).
  case nestedPageFault(exitInfo1: UInt64, exitInfo2: UInt64)
}

extension Outcome {
  /// A short name of the outcome's kind, stable for reports and JSON: `translated`,
  /// `general-protection`, `page-fault`, `ept-violation`, `ept-misconfiguration`,
  /// `nested-page-fault`.
  public var kindName: String {
    switch self {
    case .translated: "translated"
    case .generalProtection: "general-protection"
    case .pageFault: "page-fault"
    case .eptViolation: "ept-violation"
    case .eptMisconfiguration: "ept-misconfiguration"
    case .nestedPageFault: "nested-page-fault"
    }
  }
}

extension Outcome: CustomStringConvertible {
  /// One line, numbers in hexadecimal.
  public var description: String {
    switch self {
    case .translated(let hpa):
      return "translated to host physical \(hex(hpa))"
    case .generalProtection:
      return "#GP(0): non-canonical address"
    case .pageFault(let code, let address):
      return "#PF error code \(hex(code)), CR2 \(hex(address))"
    case .eptViolation(let qualification, let gpa, let gla):
      let linear = gla.map { ", guest linear \(hex($0))" } ?? ""
      return "EPT violation, qualification \(hex(qualification)), guest physical \(hex(gpa))"
        + linear
    case .eptMisconfiguration(let gpa):
      return "EPT misconfiguration, guest physical \(hex(gpa))"
    case .nestedPageFault(let info1, let info2):
      return "#NPF EXITINFO1 \(hex(info1)), EXITINFO2 \(hex(info2))"
    }
  }
}

/// `0x` followed by the value in lower-case hexadecimal.
public func hex(_ value: UInt64) -> String {
  "0x" + String(value, radix: 16)
}
