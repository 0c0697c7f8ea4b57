#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

/// Reading input files: bounded in size, and every failure a ``FormatError`` that names the
/// file, so a command prints one line and exits with the input-error code. State snapshots,
/// spec files and replay files are all read through here.
public enum InputFile {
  /// Files larger than this are refused rather than read into memory: 256 MiB.
  public static let sizeLimit = 256 << 20

  /// The contents of `path` as UTF-8 text.
  ///
  /// Refuses, naming the file: a path that does not exist, a directory, a file that cannot be
  /// opened or read (with the system's reason), a file larger than `limit` (also when its size
  /// is not known in advance, as for a pipe), and text that is not UTF-8. `kind` completes the
  /// last message: "a state snapshot is a JSON document".
  public static func text(at path: String, limit: Int = sizeLimit, kind: String) throws(FormatError)
    -> String
  {
    func fail(_ message: String) -> FormatError {
      FormatError(file: path, field: "", message: message)
    }
    var info = stat()
    guard stat(path, &info) == 0 else { throw fail(systemReason(errno)) }
    if info.st_mode & S_IFMT == S_IFDIR { throw fail("is a directory, not a file") }
    let descriptor = open(path, O_RDONLY | O_CLOEXEC)
    guard descriptor >= 0 else { throw fail("cannot open: " + systemReason(errno)) }
    defer { close(descriptor) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 1 << 16)
    while true {
      let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
      if count < 0 {
        if errno == EINTR { continue }
        throw fail("cannot read: " + systemReason(errno))
      }
      if count == 0 { break }
      guard bytes.count + count <= limit else {
        throw fail("larger than the \(limit >> 20) MiB limit for an input file")
      }
      bytes += chunk[0..<count]
    }
    guard let text = String(validating: bytes, as: UTF8.self) else {
      throw fail("not UTF-8 text (\(kind))")
    }
    return text
  }

  /// The system's description of an `errno` value, in lower case: `no such file or directory`.
  public static func systemReason(_ code: Int32) -> String {
    guard let text = strerror(code) else { return "error \(code)" }
    let reason = String(cString: text)
    return reason.prefix(1).lowercased() + reason.dropFirst()
  }
}

extension MachineState {
  /// Reads a state snapshot from a file; every problem is a ``FormatError`` naming the file and,
  /// past the file itself, the line, column and field.
  public static func load(file path: String) throws(FormatError) -> MachineState {
    try load(
      json: try InputFile.text(at: path, kind: "a state snapshot is a JSON document"), file: path)
  }
}
