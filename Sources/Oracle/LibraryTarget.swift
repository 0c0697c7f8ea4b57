import Machine

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// An implementation under test loaded into this process: a shared library exporting the C ABI
/// of adapters/include/nestcheck_adapter.h (docs/adapter-protocol.md, "The C ABI").
///
/// Calls go straight into the library, with no copying through text, so this is the fastest
/// way to drive an external implementation. The price is isolation: a crash inside the library
/// ends the whole run, and a hang hangs it. Drive code you do not trust through
/// ``ProcessTarget`` instead, which reports both as target faults.
public final class LibraryTarget: Target, StateExporting {
  /// `library:` and the path.
  public let name: String
  /// What the library's `nestcheck_adapter_describe` says.
  public let adapter: AdapterDescription

  private typealias Version = @convention(c) () -> UInt64
  private typealias Describe = @convention(c) () -> UnsafePointer<CChar>?
  private typealias Create =
    @convention(c) (
      UnsafeRawPointer, UnsafeMutablePointer<UnsafeMutableRawPointer?>, UnsafeMutablePointer<CChar>,
      Int
    ) -> Int32
  private typealias Destroy = @convention(c) (UnsafeMutableRawPointer?) -> Void
  private typealias Apply =
    @convention(c) (
      UnsafeMutableRawPointer?, UnsafeRawPointer, UnsafeMutableRawPointer
    ) -> Int32
  private typealias Word = @convention(c) (UnsafeMutableRawPointer?, UInt64, UInt64) -> Void
  private typealias Export =
    @convention(c) (
      UnsafeMutableRawPointer?, UnsafeMutableRawPointer, Word, UnsafeMutableRawPointer?
    ) -> Int32

  private let handle: UnsafeMutableRawPointer
  private let createFunction: Create
  private let destroyFunction: Destroy
  private let applyFunction: Apply
  private let exportFunction: Export?
  private var instance: UnsafeMutableRawPointer?
  private let operation = UnsafeMutablePointer<UInt64>.allocate(
    capacity: AdapterABI.Operation.allCases.count)
  private let observation = UnsafeMutablePointer<UInt64>.allocate(
    capacity: AdapterABI.Observation.words)
  private var updates: [UInt64] = []
  private var applied = 0

  /// Loads the library at `path` (a path with a slash, or a name the dynamic loader searches
  /// for) and checks its ABI version and description. A library that cannot be loaded is
  /// ``TargetError/Kind/crashed`` ("could not load"); one that lacks a function or speaks
  /// another ABI version is ``TargetError/Kind/garbage``.
  public init(path: String) throws(TargetError) {
    name = "library:" + path
    guard let handle = dlopen(path, RTLD_NOW | RTLD_LOCAL) else {
      let reason = dlerror().map { String(cString: $0) } ?? "unknown reason"
      throw TargetError(.crashed, "could not load \(path): \(reason)")
    }
    func symbol<T>(_ symbol: String, as type: T.Type) throws(TargetError) -> T {
      guard let address = dlsym(handle, symbol) else {
        dlclose(handle)
        throw TargetError(.garbage, "\(path) does not export \(symbol): not a nestcheck adapter")
      }
      return unsafeBitCast(address, to: type)
    }
    let version = try symbol("nestcheck_adapter_abi_version", as: Version.self)()
    guard version == AdapterABI.version else {
      dlclose(handle)
      throw TargetError(
        .garbage,
        "\(path) implements adapter ABI version \(version); this nestcheck speaks version "
          + "\(AdapterABI.version)")
    }
    let describe = try symbol("nestcheck_adapter_describe", as: Describe.self)
    createFunction = try symbol("nestcheck_adapter_create", as: Create.self)
    destroyFunction = try symbol("nestcheck_adapter_destroy", as: Destroy.self)
    applyFunction = try symbol("nestcheck_adapter_apply", as: Apply.self)
    exportFunction = dlsym(handle, "nestcheck_adapter_export").map {
      unsafeBitCast($0, to: Export.self)
    }
    guard let text = describe() else {
      dlclose(handle)
      throw TargetError(.garbage, "\(path): nestcheck_adapter_describe returned NULL")
    }
    do {
      adapter = try AdapterDescription(handshake: String(cString: text), source: path)
    } catch {
      dlclose(handle)
      throw TargetError(.garbage, "\(path): its description is not valid: \(error.message)")
    }
    self.handle = handle
  }

  deinit {
    if let instance { destroyFunction(instance) }
    operation.deallocate()
    observation.deallocate()
    dlclose(handle)
  }

  /// Makes a new instance of the library's MMU over `state`, freeing the previous one.
  public func reset(to state: MachineState) throws(TargetError) {
    if let instance { destroyFunction(instance) }
    instance = nil
    applied = 0
    if let reason = adapter.refusal(for: state) { throw TargetError(.setupRefused, reason) }
    let abiState = AdapterABIState(state)
    let message = UnsafeMutablePointer<CChar>.allocate(capacity: 512)
    defer { message.deallocate() }
    message.initialize(repeating: 0, count: 512)
    var made: UnsafeMutableRawPointer?
    let status = createFunction(abiState.words, &made, message, 511)
    let reason = String(cString: message)
    switch status {
    case 0:
      guard let made else {
        throw TargetError(.garbage, "nestcheck_adapter_create succeeded without an instance")
      }
      instance = made
    case 1:
      throw TargetError(.setupRefused, "\(adapter.name) refused the state: \(reason)")
    default:
      throw TargetError(.garbage, "nestcheck_adapter_create failed (\(status)): \(reason)")
    }
  }

  /// The machine as the library's instance holds it now, through the optional
  /// `nestcheck_adapter_export`; `nil` if the library does not export it or has no instance.
  public func exportState() -> MachineState? {
    guard let instance, let exportFunction else { return nil }
    let words = UnsafeMutablePointer<UInt64>.allocate(capacity: AdapterABI.State.allCases.count)
    defer { words.deallocate() }
    words.initialize(repeating: 0, count: AdapterABI.State.allCases.count)
    let collector = AdapterMemoryCollector()
    let status = withExtendedLifetime(collector) {
      exportFunction(
        instance, words,
        { context, address, value in
          guard let context else { return }
          Unmanaged<AdapterMemoryCollector>.fromOpaque(context).takeUnretainedValue()
            .add(address, value)
        }, Unmanaged.passUnretained(collector).toOpaque())
    }
    guard status == 0 else { return nil }
    return AdapterABI.state(words, memory: collector.memory)
  }

  /// Applies one operation through `nestcheck_adapter_apply`.
  public func apply(_ operation: TraceOperation) throws(TargetError) -> TraceObservation {
    guard let instance else {
      throw TargetError(.setupRefused, "no machine state: the library was not reset successfully")
    }
    if let reason = adapter.refusal(for: operation) { throw TargetError(.setupRefused, reason) }
    applied += 1
    AdapterABI.encode(operation, into: self.operation, updates: &updates)
    observation.update(repeating: 0, count: AdapterABI.Observation.words)
    let status = updates.withUnsafeBufferPointer { buffer in
      if case .paravirtualBatch = operation {
        self.operation[AdapterABI.Operation.updates.rawValue] = AdapterABI.address(
          buffer.baseAddress)
      }
      return applyFunction(instance, self.operation, observation)
    }
    switch status {
    case 0:
      do {
        return try AdapterABI.decode(observation)
      } catch {
        throw TargetError(
          .garbage,
          "its observation of operation \(applied) (\(operation.json.text())) is not valid: "
            + error.description)
      }
    case 1:
      throw TargetError(.setupRefused, "\(adapter.name) does not implement this operation")
    default:
      throw TargetError(
        .garbage, "nestcheck_adapter_apply failed (\(status)) on operation \(applied)")
    }
  }
}

/// The words a library exports, one callback at a time; misaligned or out-of-range addresses are
/// dropped.
final class AdapterMemoryCollector {
  private(set) var memory = PhysicalMemory()

  func add(_ address: UInt64, _ value: UInt64) {
    guard address & 7 == 0, address < MachineState.physicalAddressLimit else { return }
    memory[address] = value
  }
}
