import FastMMU
import Machine

/// A target named on the command line (`--target`): `fast-mmu:nested`, `fast-mmu:shadow`,
/// `fast-mmu:paravirtual`, `process:PATH`, `library:PATH`.
public enum TargetSpec: Hashable, Sendable, CustomStringConvertible {
  case fastMMU(MMUMode)
  case process(String)
  case library(String)

  /// Parses a target name; `nil` for one of no known kind.
  public init?(_ text: String) {
    if text.hasPrefix("fast-mmu:"), let mode = MMUMode(rawValue: String(text.dropFirst(9))) {
      self = .fastMMU(mode)
    } else if text.hasPrefix("process:"), text.count > 8 {
      self = .process(String(text.dropFirst(8)))
    } else if text.hasPrefix("library:"), text.count > 8 {
      self = .library(String(text.dropFirst(8)))
    } else {
      return nil
    }
  }

  /// The name as written.
  public var description: String {
    switch self {
    case .fastMMU(let mode): "fast-mmu:" + mode.rawValue
    case .process(let path): "process:" + path
    case .library(let path): "library:" + path
    }
  }

  /// The oracle mode of a fast-MMU target; `nil` for external ones (they say, or are told).
  public var impliedMode: OracleMode? {
    guard case .fastMMU(let mode) = self else { return nil }
    return FastMMUTarget(mode: mode).oracleMode
  }

  /// Makes the target. `configuration` shapes a fast MMU; `operationTimeout` bounds every
  /// answer of a process adapter.
  public func make(
    configuration: MMUConfiguration = MMUConfiguration(), operationTimeout: Duration = .seconds(5)
  ) throws(TargetError) -> any Target {
    switch self {
    case .fastMMU(let mode): return FastMMUTarget(mode: mode, configuration: configuration)
    case .process(let path):
      return ProcessTarget(executable: path, operationTimeout: operationTimeout)
    case .library(let path): return try LibraryTarget(path: path)
    }
  }
}
