import Machine

/// An implementation under test that runs as a separate process and speaks the trace protocol
/// over its standard input and output (docs/adapter-protocol.md): a handshake line, then one
/// JSON request per line and one JSON answer per line.
///
/// The process is started on first use and kept across resets; a reset sends the new state.
/// After a failure (the process crashed, hung or answered garbage) it is killed, and the next
/// reset starts a fresh one. Every wait has a deadline: a reset or an operation that gets no
/// answer in time kills the process and reports ``TargetError/Kind/timedOut``; a process that
/// dies is reported as ``TargetError/Kind/crashed`` with its exit status or signal and the end
/// of its standard error; an answer that is not a well-formed observation of this protocol
/// version is ``TargetError/Kind/garbage`` with the offending line.
public final class ProcessTarget: PipeliningTarget, StateExporting {
  /// How the adapter is started and how long it may take.
  public struct Configuration: Hashable, Sendable {
    /// The adapter's executable: a path, or a name searched for in `PATH`.
    public var executable: String
    /// Arguments after the executable's name.
    public var arguments: [String]
    /// How long one operation may take to be answered.
    public var operationTimeout: Duration
    /// How long the handshake, or a reset (which carries a whole machine state), may take.
    public var resetTimeout: Duration
    /// Start a new process for every reset instead of reusing the running one: slower, and
    /// immune to state an adapter forgets to clear.
    public var freshProcessPerReset: Bool

    /// A configuration; by default an operation may take 5 s and a reset 30 s.
    public init(
      executable: String, arguments: [String] = [], operationTimeout: Duration = .seconds(5),
      resetTimeout: Duration = .seconds(30), freshProcessPerReset: Bool = false
    ) {
      self.executable = executable
      self.arguments = arguments
      self.operationTimeout = operationTimeout
      self.resetTimeout = resetTimeout
      self.freshProcessPerReset = freshProcessPerReset
    }
  }

  /// How the adapter is started.
  public let configuration: Configuration
  /// `process:` and the executable.
  public let name: String
  private var process: AdapterProcess?
  private var handshake: AdapterDescription?
  /// Whether the running process holds a state (the last reset succeeded).
  private var ready = false
  /// Operations applied since the last reset, for error reports.
  private var applied = 0
  private var request: [UInt8] = []
  private var lines: [[UInt8]] = []
  /// A failure while exporting the state, reported by the next operation.
  private var pendingFailure: TargetError?

  /// A target for the adapter `configuration` describes; nothing is started yet.
  public init(_ configuration: Configuration) {
    self.configuration = configuration
    name = "process:" + configuration.executable
  }

  /// A target for `executable`, with the default timeouts unless given.
  public convenience init(
    executable: String, arguments: [String] = [], operationTimeout: Duration = .seconds(5)
  ) {
    self.init(
      Configuration(
        executable: executable, arguments: arguments, operationTimeout: operationTimeout))
  }

  deinit { stop() }

  /// The running adapter's process ID, if one is running.
  public var processID: Int32? { process?.pid }

  /// Starts the adapter if it is not running and returns what its handshake says.
  @discardableResult
  public func describe() throws(TargetError) -> AdapterDescription {
    if let handshake, process != nil { return handshake }
    let started: AdapterProcess
    do {
      started = try AdapterProcess(
        executable: configuration.executable, arguments: configuration.arguments)
    } catch {
      throw failure(error, doing: "starting the adapter", timeout: configuration.resetTimeout)
    }
    process = started
    ready = false
    let line: String
    do {
      line = try started.exchange([], timeout: configuration.resetTimeout)
    } catch {
      throw failure(error, doing: "waiting for the handshake", timeout: configuration.resetTimeout)
    }
    do {
      let description = try AdapterDescription(handshake: line, source: name)
      handshake = description
      return description
    } catch {
      throw garbage("its handshake is not one of protocol version 1: \(error.message)", line: line)
    }
  }

  /// Starts over from `state`: the running adapter (or a new one) receives it in a `reset`
  /// request. A state the adapter's capabilities exclude, or one it refuses, is
  /// ``TargetError/Kind/setupRefused`` and leaves the process running.
  public func reset(to state: MachineState) throws(TargetError) {
    if configuration.freshProcessPerReset { stop() }
    let description = try describe()
    ready = false
    applied = 0
    pendingFailure = nil
    if let reason = description.refusal(for: state) { throw TargetError(.setupRefused, reason) }
    let line = try exchange(
      "{\"op\":\"reset\",\"state\":" + state.json.text() + "}", doing: "resetting",
      timeout: configuration.resetTimeout)
    let answer = try parse(line, answering: "the reset")
    switch answer.result {
    case "ready" where answer.members.count == 1:
      ready = true
    case "unsupported":
      throw TargetError(.setupRefused, "\(description.name) refused the state: \(answer.message)")
    default:
      throw garbage("its answer to the reset is not {\"result\":\"ready\"}", line: line)
    }
  }

  /// Applies one operation. An operation the adapter's capabilities exclude, or one it answers
  /// `unsupported`, is ``TargetError/Kind/setupRefused``.
  public func apply(_ operation: TraceOperation) throws(TargetError) -> TraceObservation {
    let description = try describeReady()
    if let reason = description.refusal(for: operation) {
      throw TargetError(.setupRefused, reason)
    }
    guard let process else { throw TargetError(.crashed, "the adapter is not running") }
    applied += 1
    request.removeAll(keepingCapacity: true)
    AdapterWire.append(operation, to: &request)
    request.append(10)
    lines.removeAll(keepingCapacity: true)
    do {
      try process.exchange(
        request, lines: &lines, count: 1, timeout: configuration.operationTimeout)
    } catch {
      throw failure(
        error, doing: "applying operation \(applied) (\(operation.json.text()))",
        timeout: configuration.operationTimeout)
    }
    return try observation(lines[0], operation: applied)
  }

  /// Applies `operations` in order, pipelined: every request is written without waiting for
  /// the answers, which are read as they come (the adapter must answer in order, as it always
  /// does). Much faster than one ``apply(_:)`` at a time, since the adapter works while the
  /// answers travel. Stops at the first failure, which is then the run's error, for the
  /// operation at index `observations.count`.
  public func applyPipelined(_ operations: [TraceOperation]) -> PipelinedRun {
    let description: AdapterDescription
    do {
      description = try describeReady()
    } catch {
      return PipelinedRun(observations: [], error: error)
    }
    var supported = operations.count
    var refusal: TargetError?
    if let index = operations.firstIndex(where: { description.refusal(for: $0) != nil }),
      let reason = description.refusal(for: operations[index])
    {
      supported = index
      refusal = TargetError(.setupRefused, reason)
    }
    guard let process, supported > 0 else {
      return PipelinedRun(
        observations: [],
        error: refusal
          ?? (operations.isEmpty ? nil : TargetError(.crashed, "the adapter is not running")))
    }
    let first = applied + 1
    request.removeAll(keepingCapacity: true)
    for operation in operations[..<supported] {
      AdapterWire.append(operation, to: &request)
      request.append(10)
    }
    lines.removeAll(keepingCapacity: true)
    var stop: TargetError?
    do {
      try process.exchange(
        request, lines: &lines, count: supported, timeout: configuration.operationTimeout)
    } catch {
      let index = min(lines.count, supported - 1)
      stop = failure(
        error, doing: "applying operation \(first + index) (\(operations[index].json.text()))",
        timeout: configuration.operationTimeout)
    }
    var observations: [TraceObservation] = []
    observations.reserveCapacity(lines.count)
    for line in lines {
      applied += 1
      do {
        observations.append(try observation(line, operation: applied))
      } catch {
        return PipelinedRun(observations: observations, error: error)
      }
    }
    return PipelinedRun(observations: observations, error: stop ?? refusal)
  }

  /// The machine as the adapter holds it now, if its handshake says it can export it
  /// (`"exportsState": true`): an `export-state` request, answered with
  /// `{"result":"state","state":{…}}`. `nil` if it cannot; a failure (a crash, a timeout, an
  /// answer that is not a state) is reported by the next operation.
  public func exportState() -> MachineState? {
    guard ready, let description = handshake, description.exportsState else { return nil }
    do {
      let line = try exchange(
        #"{"op":"export-state"}"#, doing: "exporting the state after operation \(applied)",
        timeout: configuration.resetTimeout)
      guard let document = try? JSON.parse(line),
        case .string("state")? = document["result"]?.value, let state = document["state"]
      else {
        pendingFailure = garbage("its answer to export-state is not a state", line: line)
        return nil
      }
      do {
        return try MachineState.decode(JSONReader(state, file: name))
      } catch {
        pendingFailure = garbage("the state it exported is not valid: \(error)", line: line)
        return nil
      }
    } catch {
      pendingFailure = error
      return nil
    }
  }

  /// The handshake, once a reset has succeeded.
  private func describeReady() throws(TargetError) -> AdapterDescription {
    if let pendingFailure {
      self.pendingFailure = nil
      throw pendingFailure
    }
    guard ready, let description = handshake else {
      throw TargetError(.setupRefused, "no machine state: the adapter was not reset successfully")
    }
    return description
  }

  /// Reads the answer to operation `number`: the fast canonical form, else the full reader.
  private func observation(_ line: [UInt8], operation number: Int) throws(TargetError)
    -> TraceObservation
  {
    if let observation = AdapterWire.observation(line) { return observation }
    let text = String(decoding: line, as: UTF8.self)
    let document: JSON
    do {
      document = try JSON.parse(text)
    } catch {
      throw garbage("its answer to operation \(number) is not JSON: \(error)", line: text)
    }
    if case .string("unsupported")? = document["result"]?.value {
      var message = ""
      if case .string(let text)? = document["message"]?.value { message = text }
      let name = handshake?.name ?? "the adapter"
      throw TargetError(.setupRefused, "\(name) does not implement this operation: \(message)")
    }
    if case .string("error")? = document["result"]?.value {
      _ = try parse(text, answering: "operation \(number)")
    }
    do {
      return try TraceObservation.decode(JSONReader(document, file: nil))
    } catch {
      throw garbage(
        "its answer to operation \(number) is not an observation: \(error.description)",
        line: text)
    }
  }

  /// Ends the conversation: closes the adapter's input, lets it exit for a moment, then ends
  /// it. The next reset starts a new process.
  public func stop() {
    process?.close(grace: .milliseconds(500))
    process = nil
    handshake = nil
    ready = false
  }

  // MARK: - Exchanges

  /// Sends one request line and returns the answer line; any failure kills the process.
  private func exchange(
    _ text: String, doing activity: @autoclosure () -> String, timeout: Duration
  )
    throws(TargetError) -> String
  {
    guard let process else { throw TargetError(.crashed, "the adapter is not running") }
    request.removeAll(keepingCapacity: true)
    request.append(contentsOf: text.utf8)
    request.append(10)
    do {
      return try process.exchange(request, timeout: timeout)
    } catch {
      throw failure(error, doing: activity(), timeout: timeout)
    }
  }

  /// The ``TargetError`` for a failed exchange; the process is ended first.
  private func failure(_ failure: AdapterProcess.Failure, doing activity: String, timeout: Duration)
    -> TargetError
  {
    let stderr = process?.errorText() ?? ""
    process?.terminate()
    process = nil
    handshake = nil
    ready = false
    let context = stderr.isEmpty ? "" : "; its standard error ends: \(stderr)"
    switch failure {
    case .couldNotStart(let reason):
      return TargetError(
        .crashed, "could not start \(configuration.executable): \(reason)")
    case .exited(let status, let closedOutputOnly):
      let how = closedOutputOnly ? "closed its output and was ended (\(status))" : "\(status)"
      return TargetError(.crashed, "the adapter ended while \(activity): \(how)\(context)")
    case .timedOut:
      return TargetError(
        .timedOut, "no answer within \(timeout) while \(activity); the adapter was killed\(context)"
      )
    case .lineTooLong(let prefix):
      return TargetError(
        .garbage,
        "while \(activity), the adapter wrote a line longer than "
          + "\(AdapterProcess.maximumLineBytes) bytes: \(Self.truncated(prefix))…")
    case .answeredEarly(let line):
      return TargetError(
        .garbage,
        "while \(activity), the adapter answered before reading the whole request: "
          + Self.truncated(line))
    }
  }

  private func garbage(_ message: String, line: String) -> TargetError {
    process?.terminate()
    process = nil
    handshake = nil
    ready = false
    return TargetError(.garbage, "\(message); the line: \(Self.truncated(line))")
  }

  /// A protocol answer's `result`, its `message` if any, and its members.
  private struct Answer {
    var result: String
    var message: String
    var members: [(key: String, value: JSON)]
  }

  /// Reads the `result` of an answer; an `error` answer (the adapter could not read our
  /// request) is ``TargetError/Kind/garbage``.
  private func parse(_ line: String, answering what: String) throws(TargetError) -> Answer {
    guard let document = try? JSON.parse(line), case .object(let members) = document.value,
      case .string(let result)? = document["result"]?.value
    else { throw garbage("its answer to \(what) is not a JSON object with a result", line: line) }
    var message = ""
    if case .string(let text)? = document["message"]?.value { message = text }
    if result == "error" {
      throw garbage("it could not read the request for \(what): \(message)", line: line)
    }
    return Answer(result: result, message: message, members: members)
  }

  /// At most 300 characters of `text`.
  static func truncated(_ text: String) -> String {
    text.count > 300 ? text.prefix(300) + "… (\(text.utf8.count) bytes)" : text
  }
}
