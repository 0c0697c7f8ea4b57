import Machine

/// What an adapter says about itself: the handshake line a process adapter prints first, and the
/// string a library adapter's `nestcheck_adapter_describe` returns (docs/adapter-protocol.md,
/// "Handshake").
///
/// ```json
/// {"protocol":"nestcheck-adapter","version":1,"name":"example-c-walker",
///  "capabilities":{"nested":["ept","npt"],"guestLevels":[4],"nestedLevels":[4],
///                  "operations":["access","write-guest","invlpg"]}}
/// ```
///
/// The capabilities let a driver skip machine states and operations the adapter does not
/// implement (reported as ``TargetError/Kind/setupRefused``, never as divergences).
public struct AdapterDescription: Hashable, Sendable {
  /// The value of the `protocol` field.
  public static let protocolName = "nestcheck-adapter"
  /// The protocol version this build speaks, for processes and libraries alike.
  public static let protocolVersion = 1

  /// The adapter's name, for reports.
  public var name: String
  /// What kind of implementation it is (`nested`, `shadow`, `paravirtual`, or another word):
  /// informational.
  public var mode: String?
  /// The nested paging kinds it implements.
  public var nestedKinds: Set<MachineState.NestedKind>
  /// The guest paging depths it implements: 0 (guest paging off), 4 and 5.
  public var guestLevels: Set<Int>
  /// The EPT or NPT depths it implements: 4 and 5.
  public var nestedLevels: Set<Int>
  /// The names of the operations it implements (the `op` field of ``TraceOperation/json``).
  public var operations: Set<String>
  /// Free-form words about the implementation (`large-pages`, `no-tlb`): informational.
  public var features: [String]
  /// Whether the adapter answers `export-state` (process) or exports
  /// `nestcheck_adapter_export` (library): the machine as it holds it now.
  public var exportsState: Bool

  /// Makes a description.
  public init(
    name: String, mode: String? = nil, nestedKinds: Set<MachineState.NestedKind>,
    guestLevels: Set<Int> = [0, 4, 5], nestedLevels: Set<Int> = [4, 5],
    operations: Set<String> = Set(TraceOperation.names), features: [String] = [],
    exportsState: Bool = false
  ) {
    self.name = name
    self.mode = mode
    self.nestedKinds = nestedKinds
    self.guestLevels = guestLevels
    self.nestedLevels = nestedLevels
    self.operations = operations
    self.features = features
    self.exportsState = exportsState
  }

  /// Reads a handshake line; `source` names the adapter in errors. A line of another protocol
  /// or another version is refused with a message that says so.
  public init(handshake line: String, source: String) throws(FormatError) {
    let document: JSON
    do {
      document = try JSON.parse(line)
    } catch {
      throw FormatError(
        file: source, position: nil, field: "", message: "the handshake is not JSON: \(error)")
    }
    self = try Self.decode(JSONReader(document, file: source))
  }

  private static func decode(_ r: JSONReader) throws(FormatError) -> AdapterDescription {
    _ = try r.object(allowing: ["protocol", "version", "name", "capabilities"])
    let protocolReader = try r.required("protocol")
    guard try protocolReader.string() == protocolName else {
      throw protocolReader.error("expected \"\(protocolName)\": this is not a nestcheck adapter")
    }
    let versionReader = try r.required("version")
    let version = try versionReader.word()
    guard version == UInt64(protocolVersion) else {
      throw versionReader.error(
        "the adapter speaks protocol version \(version); this nestcheck speaks version "
          + "\(protocolVersion)")
    }
    let c = try r.required("capabilities")
    _ = try c.object(allowing: [
      "mode", "nested", "guestLevels", "nestedLevels", "operations", "features", "exportsState",
    ])
    var kinds: Set<MachineState.NestedKind> = []
    for item in try c.required("nested").array() {
      kinds.insert(try item.choice(MachineState.NestedKind.self))
    }
    var operations: Set<String> = []
    for item in try c.required("operations").array() {
      let name = try item.string()
      guard TraceOperation.names.contains(name) else {
        throw item.error("unknown operation \"\(name)\"")
      }
      operations.insert(name)
    }
    return AdapterDescription(
      name: try r.required("name").string(), mode: try c.optional("mode")?.string(),
      nestedKinds: kinds,
      guestLevels: try levels(c.optional("guestLevels"), allowed: [0, 4, 5]) ?? [0, 4, 5],
      nestedLevels: try levels(c.optional("nestedLevels"), allowed: [4, 5]) ?? [4, 5],
      operations: operations,
      features: try c.optional("features")?.array().map { item throws(FormatError) in
        try item.string()
      } ?? [],
      exportsState: try c.optional("exportsState")?.bool() ?? false)
  }

  private static func levels(_ r: JSONReader?, allowed: Set<Int>) throws(FormatError) -> Set<Int>? {
    guard let r else { return nil }
    var result: Set<Int> = []
    for item in try r.array() {
      let level = try item.integer(in: 0...5)
      guard allowed.contains(level) else { throw item.error("\(level) is not a paging depth here") }
      result.insert(level)
    }
    return result
  }

  /// Why the adapter cannot take `state`, or `nil` if its capabilities cover it.
  public func refusal(for state: MachineState) -> String? {
    let guest = state.guest
    let guestDepth = guest.cr0 & 1 << 31 == 0 ? 0 : (guest.cr4 & 1 << 12 != 0 ? 5 : 4)
    guard guestLevels.contains(guestDepth) else {
      return
        "\(name) does not implement \(guestDepth == 0 ? "guest paging off" : "\(guestDepth)-level guest paging")"
    }
    let kind: MachineState.NestedKind
    let depth: Int?
    switch state.nested {
    case .none: (kind, depth) = (.none, nil)
    case .ept(let ept): (kind, depth) = (.ept, Int((ept.eptp >> 3) & 7) + 1)
    case .npt(let npt): (kind, depth) = (.npt, npt.hostCR4 & 1 << 12 != 0 ? 5 : 4)
    }
    guard nestedKinds.contains(kind) else {
      return "\(name) does not implement nested paging of kind \(kind.rawValue)"
    }
    if let depth, !nestedLevels.contains(depth) {
      return "\(name) does not implement \(depth)-level \(kind.rawValue.uppercased())"
    }
    return nil
  }

  /// Why the adapter cannot apply `operation`, or `nil` if it implements it.
  public func refusal(for operation: TraceOperation) -> String? {
    let op = operation.adapterOperationName
    return operations.contains(op) ? nil : "\(name) does not implement \"\(op)\" operations"
  }
}

extension TraceOperation {
  /// The `op` field of the operation's JSON form: `access`, `write-guest`, …
  var adapterOperationName: String {
    switch self {
    case .access: "access"
    case .writeGuest: "write-guest"
    case .writeHost: "write-host"
    case .writeRegister: "write-register"
    case .invlpg: "invlpg"
    case .invpcid: "invpcid"
    case .invept: "invept"
    case .invvpid: "invvpid"
    case .paravirtualBatch: "paravirtual-batch"
    }
  }
}
