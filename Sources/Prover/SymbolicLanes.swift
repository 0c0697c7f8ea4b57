import ReferenceModel
import Z3

/// Lane-wise evaluation for ``Symbolic``: an operation on lane-wise values applies to each
/// lane separately (a fast loop when every lane is a known value), and a result whose lanes are
/// all equal becomes a scalar again.
extension Symbolic {
  /// The number of lanes of a lane-wise value, or 0 for a scalar.
  func laneCount(_ w: Word) -> Int {
    switch w {
    case .lanes(let values): values.count
    case .mixed(let values): values.count
    default: 0
    }
  }

  /// The number of lanes of a lane-wise flag, or 0 for a scalar.
  func laneCount(_ f: Flag) -> Int {
    switch f {
    case .lanes(let values): values.count
    case .mixed(let values): values.count
    default: 0
    }
  }

  func laneCount(_ c: Flag, _ a: Flag, _ b: Flag) -> Int {
    max(laneCount(c), laneCount(a), laneCount(b))
  }

  /// Lane `i` of a word: the word itself when it is a scalar.
  public func lane(_ i: Int, of w: Word) -> Word {
    switch w {
    case .lanes(let values): .constant(values[i])
    case .mixed(let values): values[i]
    default: w
    }
  }

  /// Lane `i` of a flag: the flag itself when it is a scalar.
  public func lane(_ i: Int, of f: Flag) -> Flag {
    switch f {
    case .lanes(let values): .constant(values[i])
    case .mixed(let values): values[i]
    default: f
    }
  }

  /// Per-lane values as one word: a scalar when all lanes agree.
  func normalize(_ values: [UInt64]) -> Word {
    guard let first = values.first else { return .constant(0) }
    return values.allSatisfy { $0 == first } ? .constant(first) : .lanes(values)
  }

  func normalize(_ values: [Bool]) -> Flag {
    guard let first = values.first else { return .constant(false) }
    return values.allSatisfy { $0 == first } ? .constant(first) : .lanes(values)
  }

  /// Per-lane scalar words as one word.
  func normalize(_ values: [Word]) -> Word {
    var constants: [UInt64] = []
    constants.reserveCapacity(values.count)
    for value in values {
      guard case .constant(let v) = value else { return normalizeMixed(values) }
      constants.append(v)
    }
    return normalize(constants)
  }

  private func normalizeMixed(_ values: [Word]) -> Word {
    guard let first = values.first else { return .constant(0) }
    if values.allSatisfy({ same($0, first) }) { return first }
    return .mixed(values)
  }

  /// Per-lane scalar flags as one flag.
  func normalize(_ values: [Flag]) -> Flag {
    var constants: [Bool] = []
    constants.reserveCapacity(values.count)
    for value in values {
      guard case .constant(let v) = value else {
        guard let first = values.first else { return .constant(false) }
        if values.allSatisfy({ same($0, first) }) { return first }
        return .mixed(values)
      }
      constants.append(v)
    }
    return normalize(constants)
  }

  private func same(_ a: Word, _ b: Word) -> Bool {
    switch (a, b) {
    case (.constant(let x), .constant(let y)): x == y
    case (.term(let x), .term(let y)): x == y
    case (.partial(let h1, let w1, let l1), .partial(let h2, let w2, let l2)):
      h1 == h2 && w1 == w2 && l1 == l2
    default: false
    }
  }

  private func same(_ a: Flag, _ b: Flag) -> Bool {
    switch (a, b) {
    case (.constant(let x), .constant(let y)): x == y
    case (.term(let x), .term(let y)): x == y
    default: false
    }
  }

  /// A unary word operation, lane by lane.
  func lanewise(_ a: Word, _ fast: (UInt64) -> UInt64, _ scalar: (Word) -> Word) -> Word {
    switch a {
    case .constant(let v): return .constant(fast(v))
    case .lanes(let values): return normalize(values.map(fast))
    case .mixed(let values): return normalize(values.map(scalar))
    default: return scalar(a)
    }
  }

  /// A binary word operation, lane by lane.
  func lanewise(
    _ a: Word, _ b: Word, _ fast: (UInt64, UInt64) -> UInt64, _ scalar: (Word, Word) -> Word
  ) -> Word {
    switch (a, b) {
    case (.lanes(let x), .lanes(let y)):
      precondition(x.count == y.count, "lane counts differ")
      return normalize(zip(x, y).map(fast))
    case (.lanes(let x), .constant(let c)): return normalize(x.map { fast($0, c) })
    case (.constant(let c), .lanes(let y)): return normalize(y.map { fast(c, $0) })
    case (.lanes, _), (_, .lanes), (.mixed, _), (_, .mixed):
      let n = max(laneCount(a), laneCount(b))
      return normalize(
        (0..<n).map { scalarOrConstant(lane($0, of: a), lane($0, of: b), fast, scalar) })
    default:
      return scalar(a, b)
    }
  }

  private func scalarOrConstant(
    _ a: Word, _ b: Word, _ fast: (UInt64, UInt64) -> UInt64, _ scalar: (Word, Word) -> Word
  ) -> Word {
    if case .constant(let x) = a, case .constant(let y) = b { return .constant(fast(x, y)) }
    return scalar(a, b)
  }

  /// A binary comparison of words, lane by lane.
  func lanewiseFlag(
    _ a: Word, _ b: Word, _ fast: (UInt64, UInt64) -> Bool, _ scalar: (Word, Word) -> Flag
  ) -> Flag {
    switch (a, b) {
    case (.lanes(let x), .lanes(let y)):
      precondition(x.count == y.count, "lane counts differ")
      return normalize(zip(x, y).map(fast))
    case (.lanes(let x), .constant(let c)): return normalize(x.map { fast($0, c) })
    case (.constant(let c), .lanes(let y)): return normalize(y.map { fast(c, $0) })
    case (.lanes, _), (_, .lanes), (.mixed, _), (_, .mixed):
      let n = max(laneCount(a), laneCount(b))
      return normalize(
        (0..<n).map { i -> Flag in
          let x = lane(i, of: a)
          let y = lane(i, of: b)
          if case .constant(let u) = x, case .constant(let v) = y { return .constant(fast(u, v)) }
          return scalar(x, y)
        })
    default:
      return scalar(a, b)
    }
  }

  /// A binary flag operation, lane by lane (scalar cases are handled by the caller).
  func lanewise(
    _ a: Flag, _ b: Flag, _ fast: (Bool, Bool) -> Bool, _ scalar: (Flag, Flag) -> Flag
  ) -> Flag {
    switch (a, b) {
    case (.lanes(let x), .lanes(let y)):
      precondition(x.count == y.count, "lane counts differ")
      return normalize(zip(x, y).map(fast))
    case (.lanes(let x), .constant(let c)): return normalize(x.map { fast($0, c) })
    case (.constant(let c), .lanes(let y)): return normalize(y.map { fast(c, $0) })
    default:
      let n = max(laneCount(a), laneCount(b))
      precondition(n > 0, "lanewise flag operation on scalars")
      return normalize((0..<n).map { scalar(lane($0, of: a), lane($0, of: b)) })
    }
  }

  /// `condition ? a : b` where something is lane-wise.
  func selectLanes(_ condition: Flag, _ a: Word, _ b: Word) -> Word {
    let n = max(laneCount(condition), laneCount(a), laneCount(b))
    if case .lanes(let c) = condition {
      switch (a, b) {
      case (.constant(let x), .constant(let y)):
        return normalize(c.map { $0 ? x : y })
      case (.lanes(let x), .constant(let y)):
        return normalize((0..<n).map { c[$0] ? x[$0] : y })
      case (.constant(let x), .lanes(let y)):
        return normalize((0..<n).map { c[$0] ? x : y[$0] })
      case (.lanes(let x), .lanes(let y)):
        return normalize((0..<n).map { c[$0] ? x[$0] : y[$0] })
      default: break
      }
    }
    return normalize(
      (0..<n).map { select(lane($0, of: condition), lane($0, of: a), lane($0, of: b)) })
  }
}
