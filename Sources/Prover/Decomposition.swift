import Machine
import ReferenceModel

/// One piece of the address space the prover decides on its own (docs/prover.md,
/// "Decomposition"). The cells of a decomposition partition the space: every address lies in
/// exactly one, whatever the tables hold, so the proof is complete even where the partition
/// was chosen badly (it is then only slower).
struct Cell: Sendable {
  /// Which address space.
  enum Space: Sendable {
    /// Guest virtual addresses: shadow against guest-plus-host.
    case linear
    /// Guest-physical addresses: the host mapping alone.
    case guestPhysical
  }

  /// How the cell's addresses are described.
  enum Shape: Sendable {
    /// Lane `i` is the addresses `prefix | indices[i] << shift(level) | low` for every value of
    /// the low `shift(level)` bits.
    case lanes([UInt64])
    /// `prefix | index << shift(level) | low` for every index outside `excluded` and every low
    /// part: the indices whose entries are zero in every table read at `level`.
    case rest(excluded: [UInt64])
    /// Every non-canonical address.
    case nonCanonical
  }

  var space: Space
  var shape: Shape
  /// The level whose index the cell ranges over.
  var level: Int
  /// The bits above that index (sign-extended for the upper canonical half).
  var prefix: UInt64
  /// Whether the guest walk reads an out-of-sync level-1 table here (§5.5 I8: the shadow may be
  /// stale, so I1–I4 and I9 are not required).
  var stale: Bool

  /// The number of low bits below the cell's index: 12 + 9(level − 1).
  var shift: Int { 12 + 9 * (level - 1) }
}

/// The bit position where a level's index starts.
func indexShift(_ level: Int) -> Int { 12 + 9 * (level - 1) }

/// The decomposition of a problem: the cells, in a fixed order, and the guest page-table frames
/// met on the way.
struct Decomposition: Sendable {
  var cells: [Cell] = []
  /// Host frame numbers of guest page tables, with the levels they serve at.
  var guestTables: [UInt64: Set<Int>] = [:]

  /// Splits both address spaces of `problem` along its table trees.
  ///
  /// The joint traversal walks the shadow tree and the guest tree together by index: at a
  /// level, every index whose entry is nonzero in either table is examined. If either walk
  /// reads a lower table there, the traversal descends; otherwise the index becomes a lane of
  /// the level's lane cell. All other indices read zero in both tables and form one rest cell.
  /// Which tables a walk reads is asked of the reference model (a recorded concrete walk at
  /// the prefix), never decoded here.
  init(_ problem: ProofProblem) {
    let memory = problem.machine.memory
    let unsync = problem.unsyncHostFrames
    func frames(_ model: ConcreteModel, _ stage: Stage, _ address: UInt64) -> [Int: UInt64] {
      var result: [Int: UInt64] = [:]
      let t = model.translate(address, Access(.read), recording: true)
      for r in t.references where r.stage == stage && r.happened { result[r.level] = r.address }
      return result.mapValues { $0 & ~0xFFF }
    }
    struct Tree {
      var model: ConcreteModel
      var stage: Stage
    }
    var cells: [Cell] = []
    var guestTables: [UInt64: Set<Int>] = [:]

    func visit(
      _ space: Cell.Space, _ trees: [Tree], guestTree: Int?, level: Int, prefix: UInt64,
      tables: [UInt64?], indices: Range<UInt64>
    ) {
      // SEMANTICS §5.1 `WP`: a guest table counts only where another tree (the shadow) has a
      // table at the same place, i.e. where a shadow page shadows it.
      let shadowed = tables.indices.contains { $0 != guestTree && tables[$0] != nil }
      if let guestTree, let table = tables[guestTree], shadowed {
        guestTables[table >> 12, default: []].insert(level)
      }
      let stale =
        level == 1 && guestTree.flatMap { tables[$0] }.map { unsync.contains($0 >> 12) } == true
      var populated: [UInt64] = []
      for index in indices {
        let used = tables.contains { table in
          table.map { memory[$0 | index << 3] != 0 } ?? false
        }
        if used { populated.append(index) }
      }
      var lanes: [UInt64] = []
      for index in populated {
        let address = prefix | index << UInt64(indexShift(level))
        guard level > 1 else {
          lanes.append(index)
          continue
        }
        let below = trees.map { frames($0.model, $0.stage, address)[level - 1] }
        if below.contains(where: { $0 != nil }) {
          visit(
            space, trees, guestTree: guestTree, level: level - 1, prefix: address, tables: below,
            indices: 0..<512)
        } else {
          lanes.append(index)
        }
      }
      if !lanes.isEmpty {
        cells.append(
          Cell(space: space, shape: .lanes(lanes), level: level, prefix: prefix, stale: stale))
      }
      if populated.count < indices.count {
        let inside = Set(populated)
        let excluded = (0..<UInt64(512)).filter { !indices.contains($0) || inside.contains($0) }
        cells.append(
          Cell(
            space: space, shape: .rest(excluded: excluded), level: level, prefix: prefix,
            stale: stale))
      }
    }

    let levels = problem.levels
    if let shadowModel = problem.shadowModel {
      let linear = [
        Tree(model: shadowModel, stage: .guest),
        Tree(model: problem.compositionModel, stage: .guest),
      ]
      let upper = ~mask(width: problem.topBit + 1)
      for (prefix, indices) in [(UInt64(0), UInt64(0)..<256), (upper, UInt64(256)..<512)] {
        // The roots, read by a walk of the half's first canonical address (`prefix` alone is
        // not canonical in the upper half: bit `topBit` is the index's).
        let first = prefix | indices.lowerBound << UInt64(indexShift(levels))
        let roots = linear.map { frames($0.model, $0.stage, first)[levels] }
        visit(
          .linear, linear, guestTree: 1, level: levels, prefix: prefix, tables: roots,
          indices: indices)
      }
      cells.append(
        Cell(space: .linear, shape: .nonCanonical, level: levels, prefix: 0, stale: false))
    }

    if let nested = problem.nestedModel {
      let tree = Tree(model: nested, stage: .nestedFinal)
      let nestedLevels = nested.state.configuration.nestedLevels
      let root = frames(nested, .nestedFinal, 0)[nestedLevels]
      visit(
        .guestPhysical, [tree], guestTree: nil, level: nestedLevels, prefix: 0, tables: [root],
        indices: 0..<512)
    }
    self.cells = cells
    self.guestTables = guestTables
  }
}
