/// The vocabulary of a trace (DESIGN.md, "what passes between the parts"): the operations a
/// driver applies to a memory-virtualization implementation and the observations it reads back.
///
/// Every value here is plain data, so a trace can be generated, shrunk, written as JSON Lines
/// (one ``TraceOperation/json`` object a line) and replayed against any implementation, in
/// process or in another language.
///
/// Addresses follow one convention in every mode, so one trace drives nested, shadow and
/// paravirtual implementations alike: the guest names its memory by *guest-physical* address,
/// and page-table entries hold guest-physical frames. A paravirtual implementation translates
/// both through the guest's pseudo-physical-to-machine map, as a PV kernel does before it writes
/// an entry; nested and shadow implementations read them as they are.
public enum TraceOperation: Hashable, Sendable {
  /// The guest accesses a linear address (SEMANTICS §4.1 with nested paging, §5.3 under shadow
  /// paging, §1.7 under paravirtualization). Observed as an ``Outcome``.
  case access(linearAddress: UInt64, Access)
  /// The guest stores a 64-bit word at an 8-byte-aligned guest-physical address, through a
  /// mapping it is entitled to: how the guest edits its own page tables. The store itself is not
  /// subject to nested permissions; a hypervisor that write-protects the page traps it.
  case writeGuest(guestPhysical: UInt64, value: UInt64)
  /// The hypervisor stores a 64-bit word at an 8-byte-aligned host physical address. Aimed at a
  /// nested (EPT or NPT) table it is a host mapping change; nothing is flushed for it.
  case writeHost(hostPhysical: UInt64, value: UInt64)
  /// A write to a control register, an MSR or a VM-control field (``RegisterName``). For CR3,
  /// bit 63 of the value is the PCID "no flush" bit of MOV to CR3 and is not stored.
  case writeRegister(RegisterName, value: UInt64)
  /// `INVLPG` of a linear address, executed by the guest (SEMANTICS §6.1).
  case invlpg(linearAddress: UInt64)
  /// `INVPCID` of the given type, executed by the guest.
  case invpcid(InvpcidType, pcid: UInt64, linearAddress: UInt64)
  /// `INVEPT` of the given type, executed by the hypervisor; `eptp` names the context for a
  /// single-context invalidation (SEMANTICS §6.2). Under AMD NPT: a flush of the nested root's
  /// combined and nested mappings, as VMRUN's TLB control does.
  case invept(InveptType, eptp: UInt64)
  /// `INVVPID` of the given type, executed by the hypervisor (SEMANTICS §6.2). Under AMD NPT the
  /// VPID is the ASID and the types are those of VMRUN's TLB control and `INVLPGA`.
  case invvpid(InvvpidType, vpid: UInt64, linearAddress: UInt64)
  /// A batch of page-table updates handed over in one hypercall (SEMANTICS §5.8,
  /// `HYPERVISOR_mmu_update`), applied in order until one fails validation. Nested and shadow
  /// implementations apply the same updates as guest writes.
  case paravirtualBatch([PageTableUpdate])
}

/// A register a trace operation writes: guest control registers and MSRs, and the VM-control
/// fields that tag and root the nested translation.
public enum RegisterName: String, CaseIterable, Hashable, Sendable {
  /// CR0: PG (31), WP (16).
  case cr0
  /// CR3: root table and PCID; bit 63 of the written value asks for no flush.
  case cr3
  /// CR4: PAE, PGE, LA57, PCIDE, SMEP, SMAP, PKE, PKS.
  case cr4
  /// IA32_EFER: LME, LMA, NXE.
  case efer
  /// RFLAGS: AC (bit 18).
  case rflags
  /// PKRU.
  case pkru
  /// IA32_PKRS.
  case pkrs
  /// The VMCS VPID (Intel) or the VMCB ASID (AMD): the tag of linear and combined mappings.
  case vpid
  /// The VMCS EPT pointer (Intel) or the VMCB N_CR3 (AMD): the nested root. Under shadow or
  /// paravirtual paging it names the tables the guest-physical map is read from.
  case nestedRoot = "nested-root"
}

/// The type operand of `INVPCID` (Intel SDM Vol. 2, INVPCID).
public enum InvpcidType: String, CaseIterable, Hashable, Sendable {
  /// Type 0: one linear address in one PCID, global translations excepted.
  case individualAddress = "individual-address"
  /// Type 1: every non-global translation of one PCID.
  case singleContext = "single-context"
  /// Type 2: every translation of every PCID, global ones included.
  case allContextsIncludingGlobal = "all-contexts-including-global"
  /// Type 3: every non-global translation of every PCID.
  case allContexts = "all-contexts"
}

/// The type operand of `INVEPT` (Intel SDM Vol. 3C §28.3.3.1).
public enum InveptType: String, CaseIterable, Hashable, Sendable {
  /// Type 1: mappings tagged with the EP4TA of the given EPTP.
  case singleContext = "single-context"
  /// Type 2: mappings of every EP4TA.
  case allContexts = "all-contexts"
}

/// The type operand of `INVVPID` (Intel SDM Vol. 3C §28.3.3.3).
public enum InvvpidType: String, CaseIterable, Hashable, Sendable {
  /// Type 0: one linear address in one VPID, global translations included.
  case individualAddress = "individual-address"
  /// Type 1: every mapping of one VPID.
  case singleContext = "single-context"
  /// Type 2: every mapping of every VPID except VPID 0.
  case allContexts = "all-contexts"
  /// Type 3: every non-global mapping of one VPID.
  case singleContextRetainingGlobals = "single-context-retaining-globals"
}

/// One request of a paravirtual page-table update batch (`mmu_update`'s `{ptr, val}`).
public struct PageTableUpdate: Hashable, Sendable {
  /// The 8-byte-aligned guest-physical address of the entry to write.
  public var entry: UInt64
  /// The new entry, its frame a guest-physical frame.
  public var value: UInt64
  /// `MMU_PT_UPDATE_PRESERVE_AD`: keep the A and D bits the entry has now.
  public var preserveAccessedDirty: Bool

  /// Makes a request.
  public init(entry: UInt64, value: UInt64, preserveAccessedDirty: Bool = false) {
    self.entry = entry
    self.value = value
    self.preserveAccessedDirty = preserveAccessedDirty
  }
}

/// Why an implementation took a VM exit (or, under paravirtualization, trapped to the
/// hypervisor): the causes the accounting of issue 4 counts.
public enum VMExitReason: String, CaseIterable, Hashable, Sendable {
  /// A guest `#PF` the hypervisor intercepted and re-injected (shadow and PV paging).
  case guestPageFault = "guest-page-fault"
  /// A `#PF` caused by the hypervisor's own tables (a shadow entry not yet filled, a read-only
  /// mapping kept for dirty tracking), fixed without the guest noticing.
  case hypervisorPageFault = "hypervisor-page-fault"
  /// A guest write to one of its write-protected page tables, trapped and emulated or unsynced.
  case writeProtectionTrap = "write-protection-trap"
  /// A hypercall.
  case hypercall
  /// An EPT violation (exit reason 48).
  case eptViolation = "ept-violation"
  /// An EPT misconfiguration (exit reason 49).
  case eptMisconfiguration = "ept-misconfiguration"
  /// A `#VMEXIT(NPF)`.
  case nestedPageFault = "nested-page-fault"
  /// An intercepted `INVLPG`.
  case invlpg
  /// An intercepted `INVPCID`.
  case invpcid
  /// An intercepted control-register or MSR write.
  case controlRegisterAccess = "control-register-access"
}

/// What an implementation reports for one operation: its architectural result and the VM exits
/// it took on the way, in order.
public struct TraceObservation: Hashable, Sendable {
  /// The architectural result.
  public var result: TraceResult
  /// The VM exits taken while applying the operation, in order. They depend on the
  /// implementation's strategy, so an oracle reports them rather than judging them.
  public var exits: [VMExitReason]

  /// Makes an observation.
  public init(_ result: TraceResult, exits: [VMExitReason] = []) {
    self.result = result
    self.exits = exits
  }
}

/// The architectural result of one operation.
public enum TraceResult: Hashable, Sendable {
  /// The operation completed and has nothing to report (writes, flushes).
  case completed
  /// An access's outcome: a host physical address, or the fault or exit it raised.
  case outcome(Outcome)
  /// A paravirtual batch's return: 0 or a negative errno (-22, `EINVAL`), and how many
  /// requests were applied before it stopped.
  case batch(status: Int, applied: Int)
  /// The operation was refused and changed nothing.
  case refused(Refusal)
}

/// Why an operation was refused.
public enum Refusal: String, CaseIterable, Hashable, Sendable {
  /// The guest-physical address is not backed by host memory.
  case unbackedGuestPhysical = "unbacked-guest-physical"
  /// The value is not one the register or instruction accepts (the architecture's #GP or
  /// VMfail).
  case invalidValue = "invalid-value"
  /// A paravirtual hypervisor's validation rejected the page-table write (SEMANTICS §5.8).
  case validationFailed = "validation-failed"
}

extension TraceResult {
  /// `-EINVAL`, the status of a paravirtual batch stopped by a request that failed validation.
  public static let invalidStatus = -22
}

// MARK: - JSON Lines form

extension TraceOperation {
  /// The operation as one JSON object, the line format of a trace. Numbers are `0x` strings.
  ///
  /// ```json
  /// {"op":"access","address":"0x7f0000001000","kind":"write","user":true}
  /// {"op":"write-register","register":"cr3","value":"0x8000000000002001"}
  /// {"op":"paravirtual-batch","updates":[{"entry":"0x3008","value":"0x5007"}]}
  /// ```
  public var json: JSON {
    switch self {
    case .access(let address, let access):
      var members: [(key: String, value: JSON)] = [
        ("op", .string("access")), ("address", .hex(address)),
        ("kind", .string(access.kind.rawValue)),
      ]
      if access.user { members.append(("user", .bool(true))) }
      if access.implicit { members.append(("implicit", .bool(true))) }
      return .object(members)
    case .writeGuest(let address, let value):
      return .object(["op": .string("write-guest"), "address": .hex(address), "value": .hex(value)])
    case .writeHost(let address, let value):
      return .object(["op": .string("write-host"), "address": .hex(address), "value": .hex(value)])
    case .writeRegister(let register, let value):
      return .object([
        "op": .string("write-register"), "register": .string(register.rawValue),
        "value": .hex(value),
      ])
    case .invlpg(let address):
      return .object(["op": .string("invlpg"), "address": .hex(address)])
    case .invpcid(let type, let pcid, let address):
      return .object([
        "op": .string("invpcid"), "type": .string(type.rawValue), "pcid": .hex(pcid),
        "address": .hex(address),
      ])
    case .invept(let type, let eptp):
      return .object(["op": .string("invept"), "type": .string(type.rawValue), "eptp": .hex(eptp)])
    case .invvpid(let type, let vpid, let address):
      return .object([
        "op": .string("invvpid"), "type": .string(type.rawValue), "vpid": .hex(vpid),
        "address": .hex(address),
      ])
    case .paravirtualBatch(let updates):
      return .object([
        "op": .string("paravirtual-batch"), "updates": .array(updates.map(\.json)),
      ])
    }
  }

  /// The names of the `op` field, one per case.
  public static let names = [
    "access", "write-guest", "write-host", "write-register", "invlpg", "invpcid", "invept",
    "invvpid", "paravirtual-batch",
  ]

  /// Reads an operation from one line of a trace; `file` names the source in errors.
  public init(jsonLine text: String, file: String? = nil) throws(FormatError) {
    let document: JSON
    do {
      document = try JSON.parse(text)
    } catch {
      throw FormatError(
        file: file, position: error.position, field: "", message: "malformed JSON: \(error.message)"
      )
    }
    self = try Self.decode(JSONReader(document, file: file))
  }

  /// Reads an operation from a parsed JSON object, refusing unknown fields.
  public static func decode(_ r: JSONReader) throws(FormatError) -> TraceOperation {
    let opReader = try r.required("op")
    let op = try opReader.string()
    switch op {
    case "access":
      _ = try r.object(allowing: ["op", "address", "kind", "user", "implicit"])
      let user = try r.optional("user")?.bool() ?? false
      let implicit = try r.optional("implicit")?.bool() ?? false
      guard !(user && implicit) else {
        throw r.error("an implicit access is supervisor-mode: user and implicit are exclusive")
      }
      let kind = try r.required("kind").choice(AccessKind.self)
      return .access(
        linearAddress: try r.required("address").word(),
        Access(kind, user: user, implicit: implicit))
    case "write-guest", "write-host":
      _ = try r.object(allowing: ["op", "address", "value"])
      let address = try alignedWord(try r.required("address"))
      let value = try r.required("value").word()
      return op == "write-guest"
        ? .writeGuest(guestPhysical: address, value: value)
        : .writeHost(hostPhysical: address, value: value)
    case "write-register":
      _ = try r.object(allowing: ["op", "register", "value"])
      return .writeRegister(
        try r.required("register").choice(RegisterName.self), value: try r.required("value").word())
    case "invlpg":
      _ = try r.object(allowing: ["op", "address"])
      return .invlpg(linearAddress: try r.required("address").word())
    case "invpcid":
      _ = try r.object(allowing: ["op", "type", "pcid", "address"])
      return .invpcid(
        try r.required("type").choice(InvpcidType.self), pcid: try r.required("pcid").word(),
        linearAddress: try r.optional("address")?.word() ?? 0)
    case "invept":
      _ = try r.object(allowing: ["op", "type", "eptp"])
      return .invept(
        try r.required("type").choice(InveptType.self), eptp: try r.optional("eptp")?.word() ?? 0)
    case "invvpid":
      _ = try r.object(allowing: ["op", "type", "vpid", "address"])
      return .invvpid(
        try r.required("type").choice(InvvpidType.self), vpid: try r.required("vpid").word(),
        linearAddress: try r.optional("address")?.word() ?? 0)
    case "paravirtual-batch":
      _ = try r.object(allowing: ["op", "updates"])
      var updates: [PageTableUpdate] = []
      for item in try r.required("updates").array() {
        updates.append(try PageTableUpdate.decode(item))
      }
      return .paravirtualBatch(updates)
    default:
      throw opReader.error(
        "unknown operation \"\(op)\" (expected one of: \(names.joined(separator: ", ")))")
    }
  }

  private static func alignedWord(_ r: JSONReader) throws(FormatError) -> UInt64 {
    let address = try r.word()
    guard address & 7 == 0 else { throw r.error("address is not 8-byte aligned") }
    return address
  }
}

extension PageTableUpdate {
  /// `{"entry": …, "value": …}`, with `"preserveAccessedDirty": true` when asked.
  public var json: JSON {
    var members: [(key: String, value: JSON)] = [("entry", .hex(entry)), ("value", .hex(value))]
    if preserveAccessedDirty { members.append(("preserveAccessedDirty", .bool(true))) }
    return .object(members)
  }

  /// Reads a request, refusing unknown fields and unaligned entry addresses.
  public static func decode(_ r: JSONReader) throws(FormatError) -> PageTableUpdate {
    _ = try r.object(allowing: ["entry", "value", "preserveAccessedDirty"])
    let entryReader = try r.required("entry")
    let entry = try entryReader.word()
    guard entry & 7 == 0 else { throw entryReader.error("entry address is not 8-byte aligned") }
    return PageTableUpdate(
      entry: entry, value: try r.required("value").word(),
      preserveAccessedDirty: try r.optional("preserveAccessedDirty")?.bool() ?? false)
  }
}

extension TraceObservation {
  /// The observation as one JSON object: `result` names the result's kind (an ``Outcome``'s
  /// ``Outcome/kindName`` for accesses), its values follow, and `exits` lists the VM exits when
  /// there were any.
  ///
  /// ```json
  /// {"result":"translated","hostPhysical":"0x110000123000"}
  /// {"result":"page-fault","errorCode":"0x7","linearAddress":"0x1000","exits":["guest-page-fault"]}
  /// ```
  public var json: JSON {
    var members: [(key: String, value: JSON)]
    switch result {
    case .completed: members = [("result", .string("completed"))]
    case .batch(let status, let applied):
      members = [
        ("result", .string("batch")), ("status", .integer(status)), ("applied", .integer(applied)),
      ]
    case .refused(let reason):
      members = [("result", .string("refused")), ("reason", .string(reason.rawValue))]
    case .outcome(let outcome):
      members = [("result", .string(outcome.kindName))]
      switch outcome {
      case .translated(let hpa): members.append(("hostPhysical", .hex(hpa)))
      case .generalProtection: break
      case .pageFault(let code, let address):
        members += [("errorCode", .hex(code)), ("linearAddress", .hex(address))]
      case .eptViolation(let qualification, let gpa, let gla):
        members += [("qualification", .hex(qualification)), ("guestPhysical", .hex(gpa))]
        if let gla { members.append(("guestLinear", .hex(gla))) }
      case .eptMisconfiguration(let gpa): members.append(("guestPhysical", .hex(gpa)))
      case .nestedPageFault(let info1, let info2):
        members += [("exitInfo1", .hex(info1)), ("exitInfo2", .hex(info2))]
      }
    }
    if !exits.isEmpty { members.append(("exits", .array(exits.map { .string($0.rawValue) }))) }
    return .object(members)
  }

  /// Reads an observation from a parsed JSON object, refusing unknown fields.
  public static func decode(_ r: JSONReader) throws(FormatError) -> TraceObservation {
    var exits: [VMExitReason] = []
    for item in try r.optional("exits")?.array() ?? [] {
      exits.append(try item.choice(VMExitReason.self))
    }
    let kindReader = try r.required("result")
    let kind = try kindReader.string()
    func fields(_ names: String...) throws(FormatError) {
      _ = try r.object(allowing: Set(names + ["result", "exits"]))
    }
    let result: TraceResult
    switch kind {
    case "completed":
      try fields()
      result = .completed
    case "batch":
      try fields("status", "applied")
      let statusReader = try r.required("status")
      guard case .number(let text) = statusReader.json.value, let status = Int(text) else {
        throw statusReader.error("expected an integer status such as 0 or -22")
      }
      result = .batch(status: status, applied: try r.required("applied").integer(in: 0...Int.max))
    case "refused":
      try fields("reason")
      result = .refused(try r.required("reason").choice(Refusal.self))
    case "translated":
      try fields("hostPhysical")
      result = .outcome(.translated(hostPhysical: try r.required("hostPhysical").word()))
    case "general-protection":
      try fields()
      result = .outcome(.generalProtection)
    case "page-fault":
      try fields("errorCode", "linearAddress")
      result = .outcome(
        .pageFault(
          errorCode: try r.required("errorCode").word(),
          linearAddress: try r.required("linearAddress").word()))
    case "ept-violation":
      try fields("qualification", "guestPhysical", "guestLinear")
      result = .outcome(
        .eptViolation(
          qualification: try r.required("qualification").word(),
          guestPhysical: try r.required("guestPhysical").word(),
          guestLinear: try r.optional("guestLinear")?.word()))
    case "ept-misconfiguration":
      try fields("guestPhysical")
      result = .outcome(.eptMisconfiguration(guestPhysical: try r.required("guestPhysical").word()))
    case "nested-page-fault":
      try fields("exitInfo1", "exitInfo2")
      result = .outcome(
        .nestedPageFault(
          exitInfo1: try r.required("exitInfo1").word(),
          exitInfo2: try r.required("exitInfo2").word()))
    default:
      throw kindReader.error("unknown result \"\(kind)\"")
    }
    return TraceObservation(result, exits: exits)
  }
}
