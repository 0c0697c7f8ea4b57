import Machine

/// The binary layout of adapters/include/nestcheck_adapter.h, version 1, as word offsets.
///
/// Every struct of the ABI is a sequence of 8-byte members, so a struct is an array of
/// `UInt64` and a member is an index into it; pointers travel as their address. The tests
/// compile a C program that prints `offsetof` of every member and compare it with these tables.
enum AdapterABI {
  static let version: UInt64 = 1

  /// `nestcheck_state`, member by member.
  enum State: Int, CaseIterable {
    case abiVersion = 0, vendor, physicalAddressBits, gigabytePages
    case cr0, cr3, cr4, efer, rflags, pkru, pkrs
    case nestedKind, nestedRoot, nestedPhysicalAddressBits, eptExecuteOnly, eptGigabytePages
    case eptModeBasedExecute, nptHostCR4, nptHostEFER
    case hasShadow, shadowCR3, shadowCR0, shadowCR4, shadowEFER, unsyncTables, unsyncTableCount
    case hostRanges, hostRangeCount, memory, memoryCount
  }

  /// `nestcheck_operation`, member by member.
  enum Operation: Int, CaseIterable {
    case kind = 0, address, value, access, user, implicit, selector, context, updates
    case updateCount
  }

  /// `nestcheck_observation`: the result, four values, the exit count, then the exits.
  enum Observation {
    static let result = 0
    static let values = 1
    static let exitCount = 5
    static let exits = 6
    static let maximumExits = 16
    static let words = 22
  }

  /// Words per `nestcheck_update`, `nestcheck_word` and `nestcheck_range`.
  static let updateWords = 3
  static let memoryWordWords = 2
  static let rangeWords = 2

  /// The C names of the members, in order, for the layout test.
  static let stateNames = [
    "abi_version", "vendor", "physical_address_bits", "gigabyte_pages", "cr0", "cr3", "cr4",
    "efer", "rflags", "pkru", "pkrs", "nested_kind", "nested_root",
    "nested_physical_address_bits", "ept_execute_only", "ept_gigabyte_pages",
    "ept_mode_based_execute", "npt_host_cr4", "npt_host_efer", "has_shadow", "shadow_cr3",
    "shadow_cr0", "shadow_cr4", "shadow_efer", "unsync_tables", "unsync_table_count",
    "host_ranges", "host_range_count", "memory", "memory_count",
  ]
  static let operationNames = [
    "kind", "address", "value", "access", "user", "implicit", "selector", "context", "updates",
    "update_count",
  ]

  // Codes shared with the header.
  static let operationCodes: [String: UInt64] = [
    "access": 1, "write-guest": 2, "write-host": 3, "write-register": 4, "invlpg": 5,
    "invpcid": 6, "invept": 7, "invvpid": 8, "paravirtual-batch": 9,
  ]
  static let registerCodes: [RegisterName: UInt64] = [
    .cr0: 0, .cr3: 1, .cr4: 2, .efer: 3, .rflags: 4, .pkru: 5, .pkrs: 6, .vpid: 7,
    .nestedRoot: 8,
  ]
  static let exitReasons: [UInt64: VMExitReason] = [
    1: .guestPageFault, 2: .hypervisorPageFault, 3: .writeProtectionTrap, 4: .hypercall,
    5: .eptViolation, 6: .eptMisconfiguration, 7: .nestedPageFault, 8: .invlpg, 9: .invpcid,
    10: .controlRegisterAccess,
  ]
  static let refusals: [UInt64: Refusal] = [
    1: .unbackedGuestPhysical, 2: .invalidValue, 3: .validationFailed,
  ]

  /// The address of a buffer, as a pointer member holds it.
  static func address(_ pointer: UnsafeRawPointer?) -> UInt64 {
    UInt64(UInt(bitPattern: pointer))
  }
}

/// A machine state in the ABI's form: the `nestcheck_state` words and the arrays they point
/// to, alive as long as this value.
final class AdapterABIState {
  let words: UnsafeMutablePointer<UInt64>
  private let arrays: [UnsafeMutablePointer<UInt64>]

  init(_ state: MachineState) {
    typealias S = AdapterABI.State
    let words = UnsafeMutablePointer<UInt64>.allocate(capacity: S.allCases.count)
    words.initialize(repeating: 0, count: S.allCases.count)
    func set(_ member: S, _ value: UInt64) { words[member.rawValue] = value }
    func set(_ member: S, _ value: Bool) { words[member.rawValue] = value ? 1 : 0 }
    var arrays: [UnsafeMutablePointer<UInt64>] = []
    func array(_ values: [UInt64], at member: S, count: S, per: Int) {
      guard !values.isEmpty else { return }
      let storage = UnsafeMutablePointer<UInt64>.allocate(capacity: values.count)
      storage.initialize(from: values, count: values.count)
      arrays.append(storage)
      set(member, AdapterABI.address(storage))
      set(count, UInt64(values.count / per))
    }
    set(.abiVersion, AdapterABI.version)
    set(.vendor, state.processor.vendor == .amd ? UInt64(1) : 0)
    set(.physicalAddressBits, UInt64(state.processor.physicalAddressBits))
    set(.gigabytePages, state.processor.gigabytePages)
    let guest = state.guest
    set(.cr0, guest.cr0)
    set(.cr3, guest.cr3)
    set(.cr4, guest.cr4)
    set(.efer, guest.efer)
    set(.rflags, guest.rflags)
    set(.pkru, guest.pkru)
    set(.pkrs, guest.pkrs)
    switch state.nested {
    case .none: break
    case .ept(let ept):
      set(.nestedKind, UInt64(1))
      set(.nestedRoot, ept.eptp)
      set(.nestedPhysicalAddressBits, UInt64(ept.physicalAddressBits))
      set(.eptExecuteOnly, ept.executeOnly)
      set(.eptGigabytePages, ept.gigabytePages)
      set(.eptModeBasedExecute, ept.modeBasedExecute)
    case .npt(let npt):
      set(.nestedKind, UInt64(2))
      set(.nestedRoot, npt.nCR3)
      set(.nestedPhysicalAddressBits, UInt64(npt.physicalAddressBits))
      set(.nptHostCR4, npt.hostCR4)
      set(.nptHostEFER, npt.hostEFER)
    }
    if let shadow = state.shadow {
      set(.hasShadow, true)
      set(.shadowCR3, shadow.cr3)
      set(.shadowCR0, shadow.cr0)
      set(.shadowCR4, shadow.cr4)
      set(.shadowEFER, shadow.efer)
      array(shadow.unsyncTables, at: .unsyncTables, count: .unsyncTableCount, per: 1)
    }
    array(
      state.hostRanges.flatMap { [$0.base, $0.size] }, at: .hostRanges, count: .hostRangeCount,
      per: AdapterABI.rangeWords)
    let memory = state.memory.words.sorted { $0.key < $1.key }.flatMap { [$0.key, $0.value] }
    array(memory, at: .memory, count: .memoryCount, per: AdapterABI.memoryWordWords)
    self.words = words
    self.arrays = arrays
  }

  deinit {
    words.deallocate()
    for array in arrays { array.deallocate() }
  }
}

extension AdapterABI {
  /// Writes `operation` into the `nestcheck_operation` at `words`, zeroing unused members; a
  /// batch's requests go into `updates`, which must stay alive until the call returns.
  static func encode(
    _ operation: TraceOperation, into words: UnsafeMutablePointer<UInt64>,
    updates: inout [UInt64]
  ) {
    typealias O = Operation
    words.update(repeating: 0, count: O.allCases.count)
    func set(_ member: O, _ value: UInt64) { words[member.rawValue] = value }
    set(.kind, operationCodes[operation.adapterOperationName] ?? 0)
    switch operation {
    case .access(let address, let access):
      set(.address, address)
      set(.access, access.kind == .read ? 0 : (access.kind == .write ? 1 : 2))
      set(.user, access.user ? 1 : 0)
      set(.implicit, access.implicit ? 1 : 0)
    case .writeGuest(let address, let value), .writeHost(let address, let value):
      set(.address, address)
      set(.value, value)
    case .writeRegister(let register, let value):
      set(.selector, registerCodes[register] ?? .max)
      set(.value, value)
    case .invlpg(let address):
      set(.address, address)
    case .invpcid(let type, let pcid, let address):
      let types: [InvpcidType] = [
        .individualAddress, .singleContext, .allContextsIncludingGlobal, .allContexts,
      ]
      set(.selector, UInt64(types.firstIndex(of: type) ?? 0))
      set(.context, pcid)
      set(.address, address)
    case .invept(let type, let eptp):
      set(.selector, type == .singleContext ? 1 : 2)
      set(.context, eptp)
    case .invvpid(let type, let vpid, let address):
      let types: [InvvpidType] = [
        .individualAddress, .singleContext, .allContexts, .singleContextRetainingGlobals,
      ]
      set(.selector, UInt64(types.firstIndex(of: type) ?? 0))
      set(.context, vpid)
      set(.address, address)
    case .paravirtualBatch(let requests):
      updates.removeAll(keepingCapacity: true)
      for request in requests {
        updates += [request.entry, request.value, request.preserveAccessedDirty ? 1 : 0]
      }
      set(.updateCount, UInt64(requests.count))
    }
  }

  /// Reads the `nestcheck_observation` at `words`; throws a description of what is wrong with
  /// it.
  static func decode(_ words: UnsafePointer<UInt64>) throws(AdapterABIError) -> TraceObservation {
    typealias O = Observation
    let value = { (index: Int) in words[O.values + index] }
    let count = words[O.exitCount]
    guard count <= UInt64(O.maximumExits) else {
      throw AdapterABIError("exit_count is \(count), more than \(O.maximumExits)")
    }
    var exits: [VMExitReason] = []
    for index in 0..<Int(count) {
      guard let reason = exitReasons[words[O.exits + index]] else {
        throw AdapterABIError("exits[\(index)] is \(words[O.exits + index]), not an exit code")
      }
      exits.append(reason)
    }
    let result: TraceResult
    switch words[O.result] {
    case 0: result = .completed
    case 1: result = .outcome(.translated(hostPhysical: value(0)))
    case 2: result = .outcome(.generalProtection)
    case 3: result = .outcome(.pageFault(errorCode: value(0), linearAddress: value(1)))
    case 4:
      result = .outcome(
        .eptViolation(
          qualification: value(0), guestPhysical: value(1),
          guestLinear: value(3) != 0 ? value(2) : nil))
    case 5: result = .outcome(.eptMisconfiguration(guestPhysical: value(0)))
    case 6: result = .outcome(.nestedPageFault(exitInfo1: value(0), exitInfo2: value(1)))
    case 7:
      guard value(1) <= UInt64(Int.max) else {
        throw AdapterABIError("a batch applied \(value(1)) requests")
      }
      result = .batch(status: Int(Int64(bitPattern: value(0))), applied: Int(value(1)))
    case 8:
      guard let refusal = refusals[value(0)] else {
        throw AdapterABIError("refusal reason \(value(0)) is not a NESTCHECK_REFUSAL_* code")
      }
      result = .refused(refusal)
    default:
      throw AdapterABIError("result \(words[O.result]) is not a NESTCHECK_RESULT_* code")
    }
    return TraceObservation(result, exits: exits)
  }
}

extension AdapterABI {
  /// The machine a library exported: the registers and nested configuration of the
  /// `nestcheck_state` at `words`, and `memory`.
  static func state(_ words: UnsafePointer<UInt64>, memory: PhysicalMemory) -> MachineState {
    func get(_ member: State) -> UInt64 { words[member.rawValue] }
    func bits(_ member: State) -> Int { Int(min(max(get(member), 32), 52)) }
    let guest = GuestRegisters(
      cr0: get(.cr0), cr3: get(.cr3), cr4: get(.cr4), efer: get(.efer), rflags: get(.rflags),
      pkru: get(.pkru), pkrs: get(.pkrs))
    let nested: NestedPaging
    switch get(.nestedKind) {
    case 1:
      nested = .ept(
        ExtendedPageTables(
          eptp: get(.nestedRoot), physicalAddressBits: bits(.nestedPhysicalAddressBits),
          executeOnly: get(.eptExecuteOnly) != 0, gigabytePages: get(.eptGigabytePages) != 0,
          modeBasedExecute: get(.eptModeBasedExecute) != 0))
    case 2:
      nested = .npt(
        NestedPageTables(
          nCR3: get(.nestedRoot), hostCR4: get(.nptHostCR4), hostEFER: get(.nptHostEFER),
          physicalAddressBits: bits(.nestedPhysicalAddressBits)))
    default:
      nested = .none
    }
    return MachineState(
      processor: Processor(
        vendor: get(.vendor) == 1 ? .amd : .intel,
        physicalAddressBits: bits(.physicalAddressBits), gigabytePages: get(.gigabytePages) != 0),
      guest: guest, nested: nested, memory: memory)
  }
}

/// What is wrong with an observation a library filled in.
struct AdapterABIError: Error, CustomStringConvertible {
  var description: String
  init(_ description: String) { self.description = description }
}
