#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// `close(2)`, named apart from the methods called `close`.
private func closeDescriptor(_ fd: Int32) {
  #if canImport(Glibc)
    _ = Glibc.close(fd)
  #else
    _ = Darwin.close(fd)
  #endif
}

/// `kill(2)` of a whole process group.
private func killGroup(_ group: pid_t) {
  #if canImport(Glibc)
    _ = Glibc.kill(-group, SIGKILL)
  #else
    _ = Darwin.kill(-group, SIGKILL)
  #endif
}

/// How a child process ended.
struct AdapterExitStatus: Hashable, Sendable, CustomStringConvertible {
  /// The exit code, if it exited.
  var code: Int32?
  /// The signal that killed it, if one did.
  var signal: Int32?

  /// Decodes a `waitpid` status (the `WIFEXITED`/`WTERMSIG` macros, which Swift cannot import).
  init(waitStatus status: Int32) {
    let low = status & 0x7F
    if low == 0 {
      code = (status >> 8) & 0xFF
    } else if low != 0x7F {
      signal = low
    }
  }

  /// `exit status 3`, `killed by signal 11 (Segmentation fault)`.
  var description: String {
    if let code { return "exit status \(code)" }
    if let signal {
      let name = strsignal(signal).map { String(cString: $0) } ?? "unknown signal"
      return "killed by signal \(signal) (\(name))"
    }
    return "stopped"
  }
}

/// A child process driven over its standard input and output one line at a time, with its
/// standard error collected: the plumbing under ``ProcessTarget``.
///
/// The child runs in a process group of its own, so that a timeout or ``close(grace:)`` ends
/// everything it started. Every wait has a deadline, and standard error is drained while
/// waiting, so neither a silent child nor a chatty one can make the driver hang. Standard
/// input is a socket written with `MSG_NOSIGNAL`, so a child that dies does not kill the driver
/// with `SIGPIPE`.
final class AdapterProcess {
  /// Why an exchange failed.
  enum Failure: Error {
    /// The process could not be started (the reason from the system).
    case couldNotStart(String)
    /// The process ended (or closed its output and was ended) before answering.
    case exited(AdapterExitStatus, closedOutputOnly: Bool)
    /// No complete line arrived before the deadline.
    case timedOut
    /// A line longer than ``maximumLineBytes`` began; its start.
    case lineTooLong(prefix: String)
    /// An answer arrived before the whole request had been written.
    case answeredEarly(line: String)
  }

  /// The child's process ID (also its process group's).
  let pid: pid_t
  private var input: Int32
  private var output: Int32
  private var errors: Int32
  /// Unread bytes of standard output from ``start`` on.
  private var buffer: [UInt8] = []
  private var start = 0
  /// Where to resume looking for a newline.
  private var scanned = 0
  private let chunk = UnsafeMutableRawPointer.allocate(byteCount: 1 << 16, alignment: 16)
  /// The last bytes the child wrote to standard error.
  private var errorTail: [UInt8] = []
  /// Set once the child has been reaped.
  private(set) var exitStatus: AdapterExitStatus?

  /// The longest line accepted.
  static let maximumLineBytes = 1 << 20
  /// How much of standard error is kept for reports.
  static let errorTailBytes = 4096

  /// Starts `executable` (searched in `PATH` when it has no slash) with `arguments`.
  init(executable: String, arguments: [String]) throws(Failure) {
    // Sockets rather than pipes: made close-on-exec atomically (a descriptor leaked into
    // another thread's child would hide this child's end), and written without SIGPIPE.
    var toChild: [Int32] = [-1, -1]
    var fromChild: [Int32] = [-1, -1]
    var errorsFromChild: [Int32] = [-1, -1]
    guard Self.makeChannel(&toChild), Self.makeChannel(&fromChild),
      Self.makeChannel(&errorsFromChild)
    else {
      let reason = Self.systemError()
      for fd in toChild + fromChild + errorsFromChild where fd >= 0 { closeDescriptor(fd) }
      throw .couldNotStart("socketpair: " + reason)
    }

    #if os(Linux)
      var actions = posix_spawn_file_actions_t()
      var attributes = posix_spawnattr_t()
    #else
      var actions: posix_spawn_file_actions_t?
      var attributes: posix_spawnattr_t?
    #endif
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_adddup2(&actions, toChild[1], 0)
    posix_spawn_file_actions_adddup2(&actions, fromChild[1], 1)
    posix_spawn_file_actions_adddup2(&actions, errorsFromChild[1], 2)
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    var defaults = sigset_t()
    sigemptyset(&defaults)
    sigaddset(&defaults, SIGPIPE)
    var mask = sigset_t()
    sigemptyset(&mask)
    posix_spawnattr_setsigdefault(&attributes, &defaults)
    posix_spawnattr_setsigmask(&attributes, &mask)
    posix_spawnattr_setpgroup(&attributes, 0)
    posix_spawnattr_setflags(
      &attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))

    let argv = ([executable] + arguments).map { strdup($0) }
    defer { for arg in argv { free(arg) } }
    var pid: pid_t = 0
    let result = posix_spawnp(&pid, executable, &actions, &attributes, argv + [nil], environ)
    closeDescriptor(toChild[1])
    closeDescriptor(fromChild[1])
    closeDescriptor(errorsFromChild[1])
    guard result == 0 else {
      closeDescriptor(toChild[0])
      closeDescriptor(fromChild[0])
      closeDescriptor(errorsFromChild[0])
      throw .couldNotStart(String(cString: strerror(result)))
    }
    self.pid = pid
    input = toChild[0]
    output = fromChild[0]
    errors = errorsFromChild[0]
    for fd in [input, output, errors] { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
  }

  deinit {
    if exitStatus == nil { _ = close(grace: .zero) }
    chunk.deallocate()
  }

  /// A connected pair of stream sockets, close-on-exec.
  private static func makeChannel(_ fds: inout [Int32]) -> Bool {
    #if os(Linux)
      let type = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
      return socketpair(AF_UNIX, type, 0, &fds) == 0
    #else
      guard socketpair(AF_UNIX, SOCK_STREAM, 0, &fds) == 0 else { return false }
      var on: Int32 = 1
      for fd in fds {
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        _ = setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &on, socklen_t(MemoryLayout<Int32>.size))
      }
      return true
    #endif
  }

  private static func systemError() -> String { String(cString: strerror(errno)) }

  /// Nanoseconds on the monotonic clock.
  static func now() -> Int64 {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC, &time)
    return Int64(time.tv_sec) * 1_000_000_000 + Int64(time.tv_nsec)
  }

  /// What the child last wrote to standard error, cut to its last `limit` characters.
  func errorText(limit: Int = 600) -> String {
    let whitespace: Set<Character> = [" ", "\n", "\r", "\t"]
    let text = String(decoding: errorTail, as: UTF8.self)
    let trimmed = text.drop { whitespace.contains($0) }.reversed().drop { whitespace.contains($0) }
    let result = String(trimmed.reversed())
    return result.count > limit ? "…" + result.suffix(limit) : result
  }

  /// Writes `request` (complete lines, possibly none) and appends to `lines` the next `count`
  /// lines the child writes, without their newlines, reading while it writes so that neither
  /// side can block the other. It waits at most `timeout` for each line: the clock restarts
  /// with every line that arrives. The lines received before a failure stay in `lines`.
  func exchange(
    _ request: [UInt8], lines: inout [[UInt8]], count: Int, timeout: Duration
  ) throws(Failure) {
    let patience = Self.nanoseconds(timeout)
    var deadline = Self.now() + patience
    var sent = 0
    var received = 0
    send(request, sent: &sent)
    while true {
      while received < count, let line = takeLine() {
        lines.append(line)
        received += 1
        deadline = Self.now() + patience
      }
      if received == count {
        if sent < request.count {
          throw .answeredEarly(line: String(decoding: lines[lines.count - 1], as: UTF8.self))
        }
        return
      }
      if buffer.count - start > Self.maximumLineBytes {
        let prefix = String(decoding: buffer[start..<(start + 200)], as: UTF8.self)
        throw .lineTooLong(prefix: prefix)
      }
      if output < 0 { throw ended() }
      let remaining = deadline - Self.now()
      guard remaining > 0 else { throw .timedOut }
      var fds = [
        pollfd(fd: output, events: Int16(POLLIN), revents: 0),
        pollfd(fd: errors, events: Int16(POLLIN), revents: 0),
        pollfd(fd: sent < request.count ? input : -1, events: Int16(POLLOUT), revents: 0),
      ]
      let milliseconds = Int32(clamping: (remaining + 999_999) / 1_000_000)
      guard poll(&fds, 3, milliseconds) >= 0 || errno == EINTR else { throw ended() }
      if fds[1].revents != 0 { drainErrors() }
      if fds[2].revents != 0 { send(request, sent: &sent) }
      if fds[0].revents != 0 { readOutput() }
    }
  }

  /// Writes `request` and returns the one line that answers it, as text.
  func exchange(_ request: [UInt8], timeout: Duration) throws(Failure) -> String {
    var lines: [[UInt8]] = []
    try exchange(request, lines: &lines, count: 1, timeout: timeout)
    return String(decoding: lines[0], as: UTF8.self)
  }

  /// Sends what it can of `request` from `sent` on without blocking. A child that no longer
  /// reads (it closed its input or died) counts as having taken everything: its answer, or its
  /// end, decides what happened.
  private func send(_ request: [UInt8], sent: inout Int) {
    while sent < request.count {
      let count = request.withUnsafeBytes { bytes -> Int in
        guard let base = bytes.baseAddress else { return 0 }
        #if os(Linux)
          return Glibc.send(input, base + sent, bytes.count - sent, Int32(MSG_NOSIGNAL))
        #else
          return Darwin.send(input, base + sent, bytes.count - sent, 0)
        #endif
      }
      if count > 0 {
        sent += count
      } else if count < 0 && errno == EINTR {
        continue
      } else if count < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) {
        return
      } else {
        sent = request.count
      }
    }
  }

  /// The next complete line in the buffer, if there is one.
  private func takeLine() -> [UInt8]? {
    guard let newline = buffer[scanned...].firstIndex(of: 10) else {
      scanned = buffer.count
      return nil
    }
    var end = newline
    if end > start && buffer[end - 1] == 13 { end -= 1 }  // tolerate CRLF
    let line = Array(buffer[start..<end])
    start = newline + 1
    if start == buffer.count {
      buffer.removeAll(keepingCapacity: true)
      start = 0
    } else if start > 1 << 16 {
      buffer.removeFirst(start)
      start = 0
    }
    scanned = start
    return line
  }

  private func readOutput() {
    while output >= 0 {
      let count = read(output, chunk, 1 << 16)
      if count > 0 {
        buffer.append(contentsOf: UnsafeRawBufferPointer(start: chunk, count: count))
        if count < 1 << 16 { return }
      } else if count < 0 && errno == EINTR {
        continue
      } else if count < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) {
        return
      } else {
        closeDescriptor(output)
        output = -1
      }
    }
  }

  private func drainErrors() {
    while errors >= 0 {
      let count = read(errors, chunk, 1 << 16)
      if count > 0 {
        errorTail.append(contentsOf: UnsafeRawBufferPointer(start: chunk, count: count))
        if errorTail.count > Self.errorTailBytes {
          errorTail.removeFirst(errorTail.count - Self.errorTailBytes)
        }
      } else if count < 0 && errno == EINTR {
        continue
      } else if count < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) {
        return
      } else {
        closeDescriptor(errors)
        errors = -1
      }
    }
  }

  /// After the child's output closed: waits a moment for it to exit, then ends its group and
  /// reaps it.
  private func ended() -> Failure {
    let deadline = Self.now() + 2_000_000_000
    var exited = hasExited()
    while !exited && Self.now() < deadline {
      drainErrors()
      usleep(1000)
      exited = hasExited()
    }
    drainErrors()
    return .exited(reap(), closedOutputOnly: !exited)
  }

  /// Whether the child has exited, without reaping it (its process group then stays reserved
  /// for the kill that follows).
  private func hasExited() -> Bool {
    if exitStatus != nil { return true }
    var info = siginfo_t()
    return waitid(P_PID, id_t(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_signo != 0
  }

  /// Ends the child's process group and reaps the child.
  @discardableResult
  private func reap() -> AdapterExitStatus {
    if let exitStatus { return exitStatus }
    killGroup(pid)
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    for fd in [input, output, errors] where fd >= 0 { closeDescriptor(fd) }
    input = -1
    output = -1
    errors = -1
    let decoded = AdapterExitStatus(waitStatus: status)
    exitStatus = decoded
    return decoded
  }

  /// Ends the conversation: closes the child's input (its signal to exit), waits up to `grace`
  /// for it to go while draining its output, then ends whatever is left of its process group.
  @discardableResult
  func close(grace: Duration) -> AdapterExitStatus {
    if let exitStatus { return exitStatus }
    if input >= 0 {
      closeDescriptor(input)
      input = -1
    }
    let deadline = Self.now() + Self.nanoseconds(grace)
    while !hasExited() {
      let remaining = deadline - Self.now()
      guard remaining > 0 else { break }
      var fds = [
        pollfd(fd: output, events: Int16(POLLIN), revents: 0),
        pollfd(fd: errors, events: Int16(POLLIN), revents: 0),
      ]
      if output < 0 && errors < 0 {
        usleep(1000)
      } else if poll(&fds, 2, Int32(clamping: min(remaining / 1_000_000 + 1, 10))) > 0 {
        if fds[0].revents != 0 {
          readOutput()
          buffer.removeAll(keepingCapacity: true)
          start = 0
          scanned = 0
        }
        if fds[1].revents != 0 { drainErrors() }
      }
    }
    return reap()
  }

  /// Kills the child's process group at once and reaps the child.
  func terminate() { reap() }

  static func nanoseconds(_ duration: Duration) -> Int64 {
    let (seconds, attoseconds) = duration.components
    return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
  }
}
