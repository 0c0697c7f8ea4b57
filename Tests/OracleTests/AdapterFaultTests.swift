import Foundation
import Machine
import Testing

@testable import Oracle

/// Adapters that crash, hang, answer garbage or speak another version (AdapterBuild's
/// misbehaving programs) are reported as the right ``TargetError``, promptly, and never hang
/// the run.
@Suite(.enabled(if: AdapterBuild.compilerAvailable, "no C compiler to build the test adapters"))
struct AdapterFaultTests {
  /// The timeout for the adapters that never answer: short, to keep the tests quick. Every
  /// other wait keeps a generous one, so that a loaded machine cannot turn a slow answer into
  /// a timeout.
  static let short: Duration = .milliseconds(400)
  static let generous: Duration = .seconds(20)

  /// The misbehaving adapter in `mode`; the operation or the reset timeout is short when asked.
  static func target(
    _ mode: String, operationTimeout: Duration = generous, resetTimeout: Duration = generous
  ) throws -> ProcessTarget {
    ProcessTarget(
      ProcessTarget.Configuration(
        executable: try AdapterBuild.built().misbehaving, arguments: [mode],
        operationTimeout: operationTimeout, resetTimeout: resetTimeout))
  }

  static let machine = AdapterTraces.machine(nested: .ept)
  static let read = AdapterTraces.access(AdapterTraces.page)

  /// The error `body` throws; fails the test if it throws none or another kind of error.
  static func error(_ body: () throws -> Void) -> TargetError? {
    do {
      try body()
    } catch let error as TargetError {
      return error
    } catch {
      Issue.record("expected a TargetError, got \(error)")
      return nil
    }
    Issue.record("expected a TargetError, got none")
    return nil
  }

  @Test func aCrashIsReportedWithItsSignalAndStandardError() throws {
    let target = try Self.target("crash")
    try target.reset(to: Self.machine)
    #expect(try target.apply(Self.read).result == .completed)
    let error = try #require(Self.error { _ = try target.apply(Self.read) })
    #expect(error.kind == .crashed)
    #expect(error.detail.contains("signal \(SIGSEGV)"))
    #expect(error.detail.contains("operation 2"))
    #expect(error.detail.contains("about to crash"))
    #expect(target.processID == nil)
  }

  @Test func aCrashInAPipelinedRunKeepsTheObservationsBeforeIt() throws {
    let target = try Self.target("crash")
    try target.reset(to: Self.machine)
    let run = target.applyAll([Self.read, Self.read, Self.read])
    #expect(run.observations == [TraceObservation(.completed)])
    #expect(run.error?.kind == .crashed)
    #expect(run.error?.detail.contains("operation 2") == true)
  }

  @Test func aHangInAPipelinedRunTimesOut() throws {
    let target = try Self.target("hang", operationTimeout: Self.short)
    try target.reset(to: Self.machine)
    let run = target.applyAll([Self.read, Self.read])
    #expect(run.observations.isEmpty)
    #expect(run.error?.kind == .timedOut)
  }

  @Test func aPipelinedRunStopsBeforeAnOperationOutsideTheCapabilities() throws {
    let target = try Self.target("exit")  // answers the first operation, exits on the second
    try target.reset(to: Self.machine)
    let run = target.applyAll([Self.read, .invept(.allContexts, eptp: 0), Self.read])
    #expect(run.observations == [TraceObservation(.completed)])
    #expect(run.error?.kind == .setupRefused)
  }

  @Test func anExitMidTraceIsACrashWithItsStatus() throws {
    let target = try Self.target("exit")
    try target.reset(to: Self.machine)
    _ = try target.apply(Self.read)
    let error = try #require(Self.error { _ = try target.apply(Self.read) })
    #expect(error.kind == .crashed)
    #expect(error.detail.contains("exit status 3"))
  }

  @Test func anOperationThatIsNeverAnsweredTimesOutAndTheAdapterIsKilled() throws {
    let target = try Self.target("hang", operationTimeout: Self.short)
    try target.reset(to: Self.machine)
    let pid = try #require(target.processID)
    let error = try #require(Self.error { _ = try target.apply(Self.read) })
    #expect(error.kind == .timedOut)
    #expect(error.detail.contains("operation 1"))
    #expect(target.processID == nil)
    #expect(kill(pid, 0) != 0)
  }

  @Test func aResetThatIsNeverAnsweredTimesOut() throws {
    let target = try Self.target("hang-reset", resetTimeout: Self.short)
    #expect(Self.error { try target.reset(to: Self.machine) }?.kind == .timedOut)
  }

  @Test func anAdapterThatNeverSpeaksTimesOutAtTheHandshake() throws {
    let target = try Self.target("silent", resetTimeout: Self.short)
    #expect(Self.error { try target.reset(to: Self.machine) }?.kind == .timedOut)
  }

  @Test func aHangingAdapterWithAChildIsEndedWithItsWholeGroup() throws {
    let target = try Self.target("leaks-child", operationTimeout: Self.short)
    try target.reset(to: Self.machine)
    #expect(Self.error { _ = try target.apply(Self.read) }?.kind == .timedOut)
  }

  @Test func aLineThatIsNotJSONIsGarbageAndQuoted() throws {
    let target = try Self.target("garbage")
    try target.reset(to: Self.machine)
    let error = try #require(Self.error { _ = try target.apply(Self.read) })
    #expect(error.kind == .garbage)
    #expect(error.detail.contains("this is not JSON"))
  }

  @Test func anAnswerThatIsNotAnObservationIsGarbage() throws {
    let target = try Self.target("not-observation")
    try target.reset(to: Self.machine)
    let error = try #require(Self.error { _ = try target.apply(Self.read) })
    #expect(error.kind == .garbage)
    #expect(error.detail.contains("hostPhysical"))
  }

  @Test func anEndlessLineIsGarbage() throws {
    let target = try Self.target("long-line")
    try target.reset(to: Self.machine)
    #expect(Self.error { _ = try target.apply(Self.read) }?.kind == .garbage)
  }

  @Test func anotherProtocolVersionIsRefusedAtTheHandshake() throws {
    let target = try Self.target("wrong-version")
    let error = try #require(Self.error { try target.reset(to: Self.machine) })
    #expect(error.kind == .garbage)
    #expect(error.detail.contains("protocol version 2"))
  }

  @Test func anAdapterThatExitsBeforeItsHandshakeCrashed() throws {
    let target = try Self.target("no-handshake")
    let error = try #require(Self.error { try target.reset(to: Self.machine) })
    #expect(error.kind == .crashed)
    #expect(error.detail.contains("exit status 0"))
  }

  @Test func anExecutableThatDoesNotExistCannotStart() throws {
    let target = ProcessTarget(executable: "/nonexistent/nestcheck-adapter")
    let error = try #require(Self.error { try target.reset(to: Self.machine) })
    #expect(error.kind == .crashed)
    #expect(error.detail.contains("could not start"))
  }

  @Test func aRefusedStateIsSetupRefusedAndTheAdapterKeepsRunning() throws {
    let target = try Self.target("refuse")
    let error = try #require(Self.error { try target.reset(to: Self.machine) })
    #expect(error.kind == .setupRefused)
    #expect(error.detail.contains("no states today"))
    #expect(target.processID != nil)
  }

  @Test func anOperationOutsideTheCapabilitiesIsRefusedWithoutBeingSent() throws {
    let target = try Self.target("hang")  // it would never answer, were the operation sent
    try target.reset(to: Self.machine)
    let error = try #require(Self.error { _ = try target.apply(.invept(.allContexts, eptp: 0)) })
    #expect(error.kind == .setupRefused)
  }

  @Test func aFloodOfStandardErrorDoesNotBlockTheConversation() throws {
    let target = ProcessTarget(
      executable: try AdapterBuild.built().misbehaving, arguments: ["chatty"])
    try target.reset(to: Self.machine)
    for _ in 0..<3 { #expect(try target.apply(Self.read).result == .completed) }
  }

  @Test func anAdapterThatIgnoresTheEndOfItsInputIsEndedOnStop() throws {
    let target = try Self.target("ignore-eof")
    try target.reset(to: Self.machine)
    let pid = try #require(target.processID)
    target.stop()
    #expect(kill(pid, 0) != 0)
  }

  @Test func theNextResetAfterAFaultStartsAFreshAdapter() throws {
    let target = try Self.target("crash")
    try target.reset(to: Self.machine)
    _ = try target.apply(Self.read)
    _ = Self.error { _ = try target.apply(Self.read) }
    try target.reset(to: Self.machine)
    #expect(try target.apply(Self.read).result == .completed)
  }

  @Test func aLibraryOfAnotherABIVersionIsRefusedOnLoading() throws {
    let error = try #require(
      Self.error { _ = try LibraryTarget(path: try AdapterBuild.built().wrongVersionLibrary) })
    #expect(error.kind == .garbage)
    #expect(error.detail.contains("version 2"))
  }

  @Test func aLibraryThatIsNotThereCannotLoad() throws {
    let error = try #require(
      Self.error { _ = try LibraryTarget(path: "/nonexistent/libnestcheck-adapter.so") })
    #expect(error.kind == .crashed)
    #expect(error.detail.contains("could not load"))
  }

  @Test func aLibraryWithoutTheFunctionsIsNoAdapter() throws {
    let error = try #require(
      Self.error { _ = try LibraryTarget(path: try AdapterBuild.built().emptyLibrary) })
    #expect(error.kind == .garbage)
    #expect(error.detail.contains("does not export nestcheck_adapter_abi_version"))
  }
}
