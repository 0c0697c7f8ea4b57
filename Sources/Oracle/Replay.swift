import Machine

/// A replay file (issue 5, item 4; docs/fuzzing.md, "replay files"): a trace with the state it
/// starts from, and the failure it reproduced when it was written, as JSON Lines.
///
/// ```json
/// {"format":"nestcheck-replay","version":1,"target":"fast-mmu:nested","mode":"nested",
///  "seed":"0x2a","state":{"format":"nestcheck-state","version":1,…}}
/// {"op":"write-guest","address":"0x1008","value":"0x0"}
/// {"op":"access","address":"0x7f0000001000","kind":"read"}
/// {"failure":{"operation":1,"kind":"divergence","observed":{"result":"translated",…},
///  "allowed":[{"result":"page-fault",…}],"reason":"…"}}
/// ```
///
/// The first line is the header; then one operation a line, in the trace format of
/// ``TraceOperation/json``; the last line, when present, records the failure: the 0-based index
/// of the operation, its kind (`divergence`, `memory`, `proof`, `target-crashed`,
/// `target-timed-out`, `target-garbage`), what was observed, what the oracle allowed, and why.
/// The failure line is a record for people: `nestcheck replay` runs the operations again and
/// judges afresh.
public struct Replay: Sendable {
  /// The value of the `format` field.
  public static let formatName = "nestcheck-replay"
  /// The format version this build reads and writes.
  public static let formatVersion = 1

  /// The failure a replay reproduced.
  public struct Failure: Sendable {
    /// The 0-based index of the failing operation (-1: at the reset).
    public var operation: Int
    /// `divergence`, `memory`, `proof`, `target-crashed`, `target-timed-out`, `target-garbage`.
    public var kind: String
    /// What the target reported (for a divergence).
    public var observed: TraceObservation?
    /// What the oracle allowed (for a divergence), or the details of the failure.
    public var allowed: [TraceResult]
    /// Why it is a failure.
    public var reason: String

    /// Makes a failure record.
    public init(
      operation: Int, kind: String, observed: TraceObservation?, allowed: [TraceResult],
      reason: String
    ) {
      self.operation = operation
      self.kind = kind
      self.observed = observed
      self.allowed = allowed
      self.reason = reason
    }
  }

  /// The target it was found with (`fast-mmu:nested`, `process:./adapter`, …).
  public var target: String
  /// The semantics it was judged against.
  public var mode: OracleMode
  /// The episode's seed, when it came from a campaign.
  public var seed: UInt64?
  /// The state the trace starts from.
  public var state: MachineState
  /// The operations.
  public var operations: [TraceOperation]
  /// The failure it reproduced, if it did.
  public var failure: Failure?

  /// Makes a replay.
  public init(
    target: String, mode: OracleMode, seed: UInt64?, state: MachineState,
    operations: [TraceOperation], failure: Failure?
  ) {
    self.target = target
    self.mode = mode
    self.seed = seed
    self.state = state
    self.operations = operations
    self.failure = failure
  }

  /// The replay of a run: its operations up to the failure, and the failure.
  public init(target: String, mode: OracleMode, seed: UInt64?, state: MachineState, run: TraceRun) {
    let failure = Failure(run.verdict)
    let end = failure.map { min(run.operations.count, $0.operation + 1) } ?? run.operations.count
    self.init(
      target: target, mode: mode, seed: seed, state: state,
      operations: Array(run.operations.prefix(end)), failure: failure)
  }

  /// The file's text: JSON Lines, ending with a newline.
  public var text: String {
    var header: [(key: String, value: JSON)] = [
      ("format", .string(Self.formatName)), ("version", .integer(Self.formatVersion)),
      ("target", .string(target)), ("mode", .string(mode.rawValue)),
    ]
    if let seed { header.append(("seed", .hex(seed))) }
    header.append(("state", state.json))
    var lines = [JSON.object(header).text()]
    lines += operations.map { $0.json.text() }
    if let failure { lines.append(JSON.object([("failure", failure.json)]).text()) }
    return lines.joined(separator: "\n") + "\n"
  }

  /// Reads a replay file's text; `file` names it in errors.
  public static func load(_ text: String, file: String? = nil) throws(FormatError) -> Replay {
    var lines = text.split(whereSeparator: \.isNewline).map(String.init)
      .filter { !$0.allSatisfy(\.isWhitespace) }
    guard !lines.isEmpty else {
      throw FormatError(file: file, field: "", message: "empty file: expected a replay header")
    }
    let headerLine = lines.removeFirst()
    let header = try reader(headerLine, file: file, line: 1)
    _ = try header.object(allowing: ["format", "version", "target", "mode", "seed", "state"])
    let format = try header.required("format")
    guard try format.string() == formatName else {
      throw format.error("expected \"\(formatName)\"; this is not a nestcheck replay file")
    }
    let version = try header.required("version")
    guard try version.word() == UInt64(formatVersion) else {
      throw version.error("unknown replay version; this nestcheck reads version \(formatVersion)")
    }
    let mode = try header.required("mode").choice(OracleMode.self)
    let state = try MachineState.decode(try header.required("state"))
    var replay = Replay(
      target: try header.required("target").string(), mode: mode,
      seed: try header.optional("seed")?.word(), state: state, operations: [], failure: nil)
    for (offset, line) in lines.enumerated() {
      let r = try reader(line, file: file, line: offset + 2)
      if r.optional("failure") != nil {
        _ = try r.object(allowing: ["failure"])
        replay.failure = try Failure.decode(try r.required("failure"))
      } else {
        replay.operations.append(try TraceOperation.decode(r))
      }
    }
    return replay
  }

  private static func reader(_ line: String, file: String?, line number: Int) throws(FormatError)
    -> JSONReader
  {
    do {
      return JSONReader(try JSON.parse(line), file: file)
    } catch {
      throw FormatError(
        file: file, position: SourcePosition(line: number, column: error.position.column),
        field: "", message: "malformed JSON: \(error.message)")
    }
  }
}

extension Replay.Failure {
  /// The failure a verdict reports, or `nil` for one that reports none.
  init?(_ verdict: TraceVerdict) {
    switch verdict {
    case .agreed, .setupRefused: return nil
    case .diverged(let index, let divergence):
      self.init(
        operation: index, kind: "divergence", observed: divergence.observed,
        allowed: divergence.allowed, reason: divergence.reason)
    case .targetFailed(let index, let error):
      self.init(
        operation: index, kind: "target-" + error.kind.rawValue, observed: nil, allowed: [],
        reason: error.detail)
    case .memoryDisagrees(let index, let disagreement):
      self.init(
        operation: index, kind: "memory", observed: nil, allowed: [],
        reason: disagreement.description)
    case .proofFailed(let index, let message):
      self.init(operation: index, kind: "proof", observed: nil, allowed: [], reason: message)
    }
  }

  var json: JSON {
    var members: [(key: String, value: JSON)] = [
      ("operation", .integer(operation)), ("kind", .string(kind)),
    ]
    if let observed { members.append(("observed", observed.json)) }
    if !allowed.isEmpty {
      members.append(("allowed", .array(allowed.map { TraceObservation($0).json })))
    }
    members.append(("reason", .string(reason)))
    return .object(members)
  }

  static func decode(_ r: JSONReader) throws(FormatError) -> Replay.Failure {
    _ = try r.object(allowing: ["operation", "kind", "observed", "allowed", "reason"])
    let operationReader = try r.required("operation")
    guard case .number(let text) = operationReader.json.value, let operation = Int(text) else {
      throw operationReader.error("expected an operation index")
    }
    var allowed: [TraceResult] = []
    for item in try r.optional("allowed")?.array() ?? [] {
      allowed.append(try TraceObservation.decode(item).result)
    }
    return Replay.Failure(
      operation: operation, kind: try r.required("kind").string(),
      observed: try r.optional("observed").map { o throws(FormatError) in
        try TraceObservation.decode(o)
      },
      allowed: allowed, reason: try r.optional("reason")?.string() ?? "")
  }
}
