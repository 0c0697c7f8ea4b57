import Machine
import Testing
import Workloads

@testable import Oracle

/// The process target's fast line writer and reader agree with the trace format's own JSON
/// forms (Operation.swift), and the reader declines whatever is not canonical.
struct AdapterWireTests {
  static let operations: [TraceOperation] = [
    .access(linearAddress: 0, Access(.read)),
    .access(linearAddress: 0x7f00_0000_1234, Access(.write, user: true)),
    .access(linearAddress: .max, Access(.fetch)),
    .access(linearAddress: 0x1000, Access(.read, implicit: true)),
    .writeGuest(guestPhysical: 0x4010, value: 0),
    .writeHost(hostPhysical: 0xF_FFFF_FFFF_FFF8, value: 0x8000_0000_0000_0001),
    .writeRegister(.cr3, value: 1 << 63 | 0x2001),
    .invlpg(linearAddress: 0x10),
    .invpcid(.allContexts, pcid: 3, linearAddress: 0),
    .invept(.singleContext, eptp: 0x101E),
    .invvpid(.individualAddress, vpid: 1, linearAddress: 0x2000),
    .paravirtualBatch([PageTableUpdate(entry: 8, value: 7, preserveAccessedDirty: true)]),
  ]

  @Test(arguments: operations)
  func theWriterWritesTheTraceFormat(operation: TraceOperation) {
    var bytes: [UInt8] = []
    AdapterWire.append(operation, to: &bytes)
    #expect(String(decoding: bytes, as: UTF8.self) == operation.json.text())
  }

  @Test func theWriterWritesEveryNameAndBatchShapeOfTheTraceFormat() {
    var operations: [TraceOperation] = RegisterName.allCases.map { .writeRegister($0, value: 5) }
    operations += InvpcidType.allCases.map { .invpcid($0, pcid: 0, linearAddress: 0x1000) }
    operations += InveptType.allCases.map { .invept($0, eptp: 0) }
    operations += InvvpidType.allCases.map { .invvpid($0, vpid: 0xFFFF, linearAddress: 1) }
    operations += [
      .paravirtualBatch([]),
      .paravirtualBatch([
        PageTableUpdate(entry: 0x3008, value: 0x5007),
        PageTableUpdate(entry: 0x3010, value: 0, preserveAccessedDirty: true),
        PageTableUpdate(entry: 0x7_0000_0000, value: .max),
      ]),
    ]
    for operation in operations {
      var bytes: [UInt8] = []
      AdapterWire.append(operation, to: &bytes)
      #expect(String(decoding: bytes, as: UTF8.self) == operation.json.text())
    }
  }

  @Test func theWriterWritesEveryWidthOfNumber() {
    var random = SeededGenerator(seed: 3)
    for shift in 0..<64 {
      let value = UInt64.random(in: 0...UInt64.max, using: &random) >> UInt64(shift)
      let operation = TraceOperation.writeHost(hostPhysical: 8, value: value)
      var bytes: [UInt8] = []
      AdapterWire.append(operation, to: &bytes)
      #expect(String(decoding: bytes, as: UTF8.self) == operation.json.text())
    }
  }

  static let observations: [TraceObservation] = [
    TraceObservation(.completed),
    TraceObservation(.outcome(.translated(hostPhysical: 0))),
    TraceObservation(.outcome(.translated(hostPhysical: .max))),
    TraceObservation(.outcome(.generalProtection)),
    TraceObservation(.outcome(.pageFault(errorCode: 0x27, linearAddress: 0x7f00_0000_1000))),
    TraceObservation(
      .outcome(.eptViolation(qualification: 0x181, guestPhysical: 0x6010, guestLinear: 0x10)),
      exits: [.eptViolation]),
    TraceObservation(
      .outcome(.eptViolation(qualification: 0x1, guestPhysical: 0x6010, guestLinear: nil))),
    TraceObservation(
      .outcome(.eptMisconfiguration(guestPhysical: 0x5234)), exits: [.eptMisconfiguration]),
    TraceObservation(
      .outcome(.nestedPageFault(exitInfo1: 0x2_0000_0007, exitInfo2: 0x4008)),
      exits: [.nestedPageFault]),
    TraceObservation(
      .outcome(.pageFault(errorCode: 7, linearAddress: 0)),
      exits: [.hypervisorPageFault, .writeProtectionTrap, .guestPageFault]),
  ]

  @Test(arguments: observations)
  func theReaderReadsTheCanonicalForm(observation: TraceObservation) {
    #expect(AdapterWire.observation(Array(observation.json.text().utf8)) == observation)
  }

  @Test func theReaderLeavesEveryOtherFormToTheFullReader() {
    let lines = [
      #"{"result":"translated","hostPhysical":"0x0123"}"#,  // a leading zero
      #"{"result":"translated","hostPhysical":"0X123"}"#,
      #"{"result":"translated","hostPhysical":"0xABC"}"#,  // upper case
      #"{"result":"translated","hostPhysical":"0x10000000000000000"}"#,  // 17 digits
      #"{"result":"translated","hostPhysical":4096}"#,
      #"{"result":"translated", "hostPhysical":"0x1"}"#,
      #"{"hostPhysical":"0x1","result":"translated"}"#,
      #"{"result":"translated","hostPhysical":"0x1"} "#,
      #"{"result":"translated","hostPhysical":"0x1","extra":1}"#,
      #"{"result":"completed","exits":["no-such-exit"]}"#,
      #"{"result":"batch","status":0,"applied":1}"#,
      #"{"result":"unsupported","message":"no"}"#,
      "garbage",
    ]
    for line in lines { #expect(AdapterWire.observation(Array(line.utf8)) == nil, "\(line)") }
  }
}

/// The examples of docs/adapter-protocol.md are real lines of the protocol.
struct AdapterProtocolDocumentationTests {
  /// The lines of the fenced `json` blocks in the section under `heading`.
  static func exampleLines(after heading: String) throws -> [String] {
    let document = AdapterBuild.root.appendingPathComponent("docs/adapter-protocol.md")
    let text = try String(contentsOf: document, encoding: .utf8)
    let start = try #require(text.firstRange(of: "\n" + heading + "\n")).upperBound
    let rest = text[start...]
    let section = rest[..<(rest.firstRange(of: "\n## ")?.lowerBound ?? rest.endIndex)]
    var lines: [String] = []
    var inBlock = false
    for line in section.split(separator: "\n") {
      if line == "```json" {
        inBlock = true
      } else if line == "```" {
        inBlock = false
      } else if inBlock {
        lines.append(String(line))
      }
    }
    return lines
  }

  @Test func theOperationExamplesAreOperations() throws {
    let lines = try Self.exampleLines(after: "## Operations")
    #expect(lines.count >= 10)
    for line in lines {
      #expect(throws: Never.self, "\(line)") { try TraceOperation(jsonLine: line) }
    }
  }

  @Test func theObservationExamplesAreObservations() throws {
    let lines = try Self.exampleLines(after: "## Observations")
    #expect(lines.count >= 7)
    for line in lines {
      #expect(throws: Never.self, "\(line)") {
        try TraceObservation.decode(JSONReader(JSON.parse(line), file: nil))
      }
    }
  }

  @Test func theHandshakeExampleIsTheExamplesOwn() throws {
    let lines = try Self.exampleLines(after: "## Handshake")
    let description = try AdapterDescription(handshake: lines.joined(), source: "docs")
    #expect(description.name == "example-c-walker")
  }
}
