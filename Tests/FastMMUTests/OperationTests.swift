import FastMMU
import Machine
import Testing
import Workloads

/// One trace, three strategies (issue 4, "done when"), and the trace vocabulary's JSON form.
@Suite struct OperationTests {
  static let pages: UInt64 = 8

  /// Eight user pages at ``Layout/data`` on consecutive frames, and eight spare frames.
  static func scenario() -> Scenario {
    var scenario = Scenario(.ept)
    for page in 0..<pages {
      scenario.map(Layout.data + page << 12, to: Layout.dataFrame + page << 12)
      scenario.back(TLBTests.newFrame + page << 12)
    }
    return scenario
  }

  /// Reads every page, remaps them all in one batch, flushes each, reads them again.
  static func trace(_ scenario: Scenario) -> [TraceOperation] {
    let reads = (0..<pages).map { page in
      TraceOperation.access(linearAddress: Layout.data + page << 12 + 8, Access(.read, user: true))
    }
    let batch = TraceOperation.paravirtualBatch(
      (0..<pages).map { page in
        PageTableUpdate(
          entry: scenario.entry(Layout.data + page << 12, level: 1),
          value: TLBTests.newFrame + page << 12 | Bits.userData)
      })
    let flushes = (0..<pages).map { TraceOperation.invlpg(linearAddress: Layout.data + $0 << 12) }
    return reads + [batch] + flushes + reads
  }

  @Test func theThreeModesAnswerOneTraceAlikeAndDifferOnlyInExits() throws {
    let scenario = Self.scenario()
    let trace = Self.trace(scenario)
    let configuration = MMUConfiguration(shadowWritePolicy: .emulate)
    var observations: [MMUMode: [TraceObservation]] = [:]
    for mode in MMUMode.allCases {
      let mmu = try makeMMU(mode, state: scenario.state, configuration: configuration)
      #expect(mmu.mode == mode)
      observations[mode] = trace.map { mmu.apply($0) }
    }
    let nested = try #require(observations[.nested])
    let shadow = try #require(observations[.shadow])
    let paravirtual = try #require(observations[.paravirtual])
    #expect(nested.map(\.result) == shadow.map(\.result))
    #expect(nested.map(\.result) == paravirtual.map(\.result))
    let batch = Int(Self.pages)
    #expect(nested[batch].exits.isEmpty)
    #expect(shadow[batch].exits == Array(repeating: .writeProtectionTrap, count: batch))
    #expect(paravirtual[batch].exits == [.hypercall])
    let last = try #require(nested.last)
    #expect(
      last.result
        == .outcome(
          .translated(hostPhysical: scenario.host(TLBTests.newFrame + (Self.pages - 1) << 12 + 8))))
  }

  static let operations: [TraceOperation] = [
    .access(linearAddress: 0x7F00_0000_1008, Access(.write, user: true)),
    .access(linearAddress: 0x1000, Access(.read, implicit: true)),
    .writeGuest(guestPhysical: 0x3008, value: 0x5007),
    .writeHost(hostPhysical: 0x4000_3008, value: 0x8000_0000_0000_0001),
    .writeRegister(.cr3, value: 0x8000_0000_0000_2001),
    .writeRegister(.nestedRoot, value: 0x501E),
    .invlpg(linearAddress: 0xFFFF_8000_0000_0000),
    .invpcid(.allContextsIncludingGlobal, pcid: 3, linearAddress: 0),
    .invept(.singleContext, eptp: 0x501E),
    .invvpid(.singleContextRetainingGlobals, vpid: 2, linearAddress: 0x1000),
    .paravirtualBatch([
      PageTableUpdate(entry: 0x3008, value: 0x5007),
      PageTableUpdate(entry: 0x3010, value: 0, preserveAccessedDirty: true),
    ]),
  ]

  @Test(arguments: operations)
  func operationsSurviveJSONLines(_ operation: TraceOperation) throws {
    let line = operation.json.text()
    #expect(!line.contains("\n"))
    #expect(try TraceOperation(jsonLine: line) == operation)
  }

  static let observations: [TraceObservation] = [
    TraceObservation(.completed),
    TraceObservation(.outcome(.translated(hostPhysical: 0x4000_1008))),
    TraceObservation(.outcome(.generalProtection)),
    TraceObservation(
      .outcome(.pageFault(errorCode: 0x7, linearAddress: 0x1000)), exits: [.guestPageFault]),
    TraceObservation(
      .outcome(.eptViolation(qualification: 0x181, guestPhysical: 0x1000, guestLinear: 0x2000)),
      exits: [.eptViolation]),
    TraceObservation(
      .outcome(.eptViolation(qualification: 0x1, guestPhysical: 0x1000, guestLinear: nil))),
    TraceObservation(.outcome(.eptMisconfiguration(guestPhysical: 0x1000))),
    TraceObservation(.outcome(.nestedPageFault(exitInfo1: 1 << 33 | 7, exitInfo2: 0x3000))),
    TraceObservation(.batch(status: -22, applied: 3), exits: [.hypercall]),
    TraceObservation(.refused(.validationFailed), exits: [.writeProtectionTrap]),
  ]

  @Test(arguments: observations)
  func observationsSurviveJSON(_ observation: TraceObservation) throws {
    let text = observation.json.text()
    let decoded = try TraceObservation.decode(JSONReader(JSON.parse(text), file: nil))
    #expect(decoded == observation)
  }

  @Test(arguments: [
    (#"{"op":"jump","address":"0x1000"}"#, "op"),
    (#"{"op":"write-guest","address":"0x1001","value":"0x0"}"#, "address"),
    (#"{"op":"access","address":"0x1000","kind":"read","user":true,"implicit":true}"#, ""),
    (#"{"op":"invlpg","address":"0x1000","pcid":"0x1"}"#, "pcid"),
  ])
  func malformedOperationsAreRefusedNamingTheField(_ line: String, field: String) {
    #expect {
      try TraceOperation(jsonLine: line)
    } throws: { error in
      (error as? FormatError)?.field == field
    }
  }
}
