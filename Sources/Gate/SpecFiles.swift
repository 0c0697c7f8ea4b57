import Foundation
import Machine

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

/// Finding, reading, parsing and building the specs under a list of paths: everything `nestcheck
/// check` does before it runs anything. The first problem stops it, as a ``FormatError`` naming
/// the file and, inside a file, the line, column and field.
public enum SpecFiles {
  /// Spec files larger than this are refused: 4 MiB.
  public static let sizeLimit = 4 << 20

  /// The extensions of spec files looked for in directories.
  public static let extensions = ["yaml", "yml"]

  /// The spec files under `paths`: each path that is a file, as given; each directory's
  /// `*.yaml` and `*.yml` files at any depth, hidden entries skipped. Sorted by path and
  /// without repeats, so that the order never depends on the file system or on the order of
  /// the arguments.
  public static func discover(_ paths: [String]) throws(FormatError) -> [String] {
    var found: Set<String> = []
    for path in paths {
      var isDirectory: ObjCBool = false
      guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
        throw FormatError(file: path, field: "", message: "no such file or directory")
      }
      if isDirectory.boolValue {
        var visited: Set<String> = []
        let before = found.count
        try collect(directory: path, into: &found, visited: &visited)
        if found.count == before {
          throw FormatError(
            file: path, field: "",
            message: "no spec files (*.yaml, *.yml) in this directory or below")
        }
      } else {
        found.insert(path)
      }
    }
    return found.sorted()
  }

  static func collect(
    directory: String, into found: inout Set<String>, visited: inout Set<String>
  ) throws(FormatError) {
    let real = URL(fileURLWithPath: directory).resolvingSymlinksInPath().path
    guard visited.insert(real).inserted else { return }  // a symbolic-link loop
    let entries: [String]
    do {
      entries = try FileManager.default.contentsOfDirectory(atPath: directory)
    } catch {
      throw FormatError(file: directory, field: "", message: "cannot list this directory")
    }
    for entry in entries.sorted() where !entry.hasPrefix(".") {
      let path = directory.hasSuffix("/") ? directory + entry : directory + "/" + entry
      var isDirectory: ObjCBool = false
      guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
        continue  // a dangling symbolic link
      }
      if isDirectory.boolValue {
        try collect(directory: path, into: &found, visited: &visited)
      } else if let dot = entry.lastIndex(of: "."),
        extensions.contains(String(entry[entry.index(after: dot)...]))
      {
        found.insert(path)
      }
    }
  }

  /// The text of the spec file at `path`: refused, naming the file, when it cannot be opened or
  /// read (with the system's reason), is larger than ``sizeLimit``, or is not UTF-8.
  public static func text(at path: String) throws(FormatError) -> String {
    try InputFile.text(at: path, limit: sizeLimit, kind: "a spec is a YAML document")
  }

  /// Reads, parses and builds every spec under `paths`, in ``discover(_:)``'s order, and
  /// refuses two specs with one name.
  public static func load(_ paths: [String]) throws(FormatError) -> [BuiltSpec] {
    var built: [BuiltSpec] = []
    var names: [String: String] = [:]
    for file in try discover(paths) {
      let spec = try Spec.parse(yaml: try text(at: file), file: file)
      if let other = names[spec.name] {
        throw spec.origin("name").error(
          "the name \"\(spec.name)\" is already used by \(other); spec names are unique in a run",
          file: file)
      }
      names[spec.name] = file
      built.append(try spec.build())
    }
    return built
  }
}
