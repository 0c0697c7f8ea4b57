import Machine

/// Shrinking (issue 5, item 4; docs/fuzzing.md, "shrinking"): a failing trace reduced to a
/// minimal one that still fails the same way — operations first (cut after the failure, then
/// delta debugging over chunks of halving size, down to single operations), then values (each
/// operation's numbers toward zero: addresses to their page, every set bit of a stored value
/// or register cleared in turn, accesses to supervisor reads, batches to fewer requests).
/// Every candidate is run again from the start state against the target with the oracle.
public struct Shrinker {
  /// The runner that re-runs candidates.
  public let runner: TraceRunner
  /// Runs the shrinker may make.
  public var budget = 3000
  /// The same target without the defect being isolated (the fast MMU without an injected
  /// bug), when there is one: a candidate then counts only if this runner runs it clean, so
  /// that the reproducer shows the defect and nothing the two share.
  public var reference: TraceRunner? = nil

  /// A shrinker that re-runs candidates with `runner`.
  public init(runner: TraceRunner) { self.runner = runner }

  /// The smallest failing replay found within the budget.
  ///
  /// A candidate counts only if it fails the same way: a failure of the same kind, at the same
  /// kind of operation (an access still, not a register write whose simplified value the
  /// target and the oracle happen to disagree on), so that shrinking cannot drift from the
  /// defect found to another.
  public func shrink(_ replay: Replay) -> Replay {
    guard let failure = replay.failure else { return replay }
    let failingOperation = Self.operationKind(replay.operations, at: failure.operation)
    var runs = 0
    var best = replay
    /// Runs a candidate; keeps it if it fails the same way.
    func attempt(_ operations: [TraceOperation]) -> Bool {
      guard runs < budget, !operations.isEmpty else { return false }
      runs += 1
      let run = runner.run(replay.state, operations)
      guard let found = Replay.Failure(run.verdict), found.kind == failure.kind,
        Self.operationKind(run.operations, at: found.operation) == failingOperation
      else {
        return false
      }
      if let reference, reference.run(replay.state, operations).verdict != .agreed {
        return false
      }
      best = Replay(
        target: replay.target, mode: replay.mode, seed: replay.seed, state: replay.state,
        run: run)
      return true
    }

    // Operations: delta debugging over chunks.
    var chunk = max(1, best.operations.count / 2)
    while chunk >= 1 && runs < budget {
      var changed = false
      var start = 0
      while start < best.operations.count && runs < budget {
        var candidate = best.operations
        candidate.removeSubrange(start..<min(start + chunk, candidate.count))
        if attempt(candidate) {
          changed = true
        } else {
          start += chunk
        }
      }
      if !changed {
        if chunk == 1 { break }
        chunk /= 2
      }
    }

    // Values: each operation toward zero.
    var index = 0
    while index < best.operations.count && runs < budget {
      var improved = false
      for variant in Self.simpler(best.operations[index]) {
        var candidate = best.operations
        candidate[index] = variant
        if attempt(candidate) {
          improved = true
          break
        }
      }
      if !improved { index += 1 }
    }
    return best
  }

  /// The kind of the operation at `index` (`access`, `write-register`, …), or `nil` for a
  /// failure at the reset.
  static func operationKind(_ operations: [TraceOperation], at index: Int) -> String? {
    guard operations.indices.contains(index) else { return nil }
    switch operations[index] {
    case .access: return "access"
    case .writeGuest: return "write-guest"
    case .writeHost: return "write-host"
    case .writeRegister(let register, _): return "write-register " + register.rawValue
    case .invlpg: return "invlpg"
    case .invpcid: return "invpcid"
    case .invept: return "invept"
    case .invvpid: return "invvpid"
    case .paravirtualBatch: return "batch"
    }
  }

  /// Simpler versions of an operation, most aggressive first.
  static func simpler(_ operation: TraceOperation) -> [TraceOperation] {
    var result: [TraceOperation] = []
    switch operation {
    case .access(let address, let access):
      if address & 0xFFF != 0 {
        result.append(.access(linearAddress: address & ~0xFFF, access))
      }
      if access.kind != .read || access.user || access.implicit {
        result.append(.access(linearAddress: address, Access(.read)))
      }
      if access.user || access.implicit {
        result.append(.access(linearAddress: address, Access(access.kind)))
      }
    case .writeGuest(let address, let value):
      result += cleared(value).map { .writeGuest(guestPhysical: address, value: $0) }
    case .writeHost(let address, let value):
      result += cleared(value).map { .writeHost(hostPhysical: address, value: $0) }
    case .writeRegister(let register, let value):
      result += cleared(value).map { .writeRegister(register, value: $0) }
    case .invlpg(let address):
      if address & 0xFFF != 0 { result.append(.invlpg(linearAddress: address & ~0xFFF)) }
    case .invpcid(let type, let pcid, let address):
      if pcid != 0 { result.append(.invpcid(type, pcid: 0, linearAddress: address)) }
      if address != 0 { result.append(.invpcid(type, pcid: pcid, linearAddress: 0)) }
    case .invept(let type, let eptp):
      if type != .allContexts { result.append(.invept(.allContexts, eptp: 0)) }
      _ = eptp
    case .invvpid(let type, let vpid, let address):
      if address != 0 { result.append(.invvpid(type, vpid: vpid, linearAddress: 0)) }
    case .paravirtualBatch(let updates):
      for index in updates.indices where updates.count > 1 {
        var fewer = updates
        fewer.remove(at: index)
        result.append(.paravirtualBatch(fewer))
      }
      for index in updates.indices {
        if updates[index].preserveAccessedDirty {
          var plain = updates
          plain[index].preserveAccessedDirty = false
          result.append(.paravirtualBatch(plain))
        }
        for value in cleared(updates[index].value) {
          var changed = updates
          changed[index].value = value
          result.append(.paravirtualBatch(changed))
        }
      }
    }
    return result
  }

  /// `value` with all bits cleared, then with each set bit cleared in turn (highest first).
  static func cleared(_ value: UInt64) -> [UInt64] {
    guard value != 0 else { return [] }
    var result: [UInt64] = [0]
    for bit in stride(from: 63, through: 0, by: -1) where value >> UInt64(bit) & 1 == 1 {
      result.append(value & ~(1 << UInt64(bit)))
    }
    return result
  }
}
