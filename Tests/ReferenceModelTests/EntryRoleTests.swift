import Machine
import ReferenceModel
import Testing
import Workloads

/// ``EntryRole``: what one entry does to the walk that reads it. The role is the walk's own
/// decision, so the test asks the walk: an entry planted on a real path, at its level, with a
/// value drawn from the bits that decide presence, size and reserved-bit faults, must stop the
/// walk there exactly when its role is `.stops`, end it there when `.leaf`, and let it go on
/// below when `.table`.
@Suite struct EntryRoleTests {
  /// Entry values biased towards the bits that decide a role: P (or EPT XWR), PS, a reserved
  /// address bit, XD, EPT memory types and the AMD bit 8.
  static func values(count: Int, seed: UInt64) -> [UInt64] {
    var random = SeededGenerator(seed: seed)
    let interesting: [UInt64] = [
      1, 1 << 1, 1 << 2, 1 << 3, 1 << 4, 1 << 5, 1 << 6, 1 << 7, 1 << 8, 1 << 10, 1 << 13,
      1 << 20, 1 << 40, 1 << 51, 1 << 63,
    ]
    return (0..<count).map { _ in
      var value = UInt64.random(in: 0...UInt64.max, using: &random) & 0x0000_000F_FFFF_F000
      for bit in interesting where Bool.random(using: &random) { value |= bit }
      return value
    }
  }

  /// What the walk did with the guest entry it read at `level`: read on below it (a guest
  /// entry, or the nested walk of one, at a lower level: `.table`), stopped there with a
  /// not-present or reserved-bit fault (`.stops`), or ended its guest walk there (`.leaf`).
  static func guestRole(_ walk: Translation<Concrete>, level: Int) -> EntryRole {
    let below = walk.references.contains {
      ($0.stage == .guest || $0.stage == .nestedTable) && $0.guestLevel < level
    }
    if below { return .table }
    return walk.decidingStage == .guest && stops(walk.decidingRule) ? .stops : .leaf
  }

  @Test(arguments: [PagingShape.Nested.ept(levels: 4), .npt(levels: 4), .none])
  func aGuestEntrysRoleIsWhatTheWalkDoesWithIt(nested: PagingShape.Nested) throws {
    var checked = 0
    for seed in UInt64(1)...24 {
      let machine = RandomMachine(shape: PagingShape(guestLevels: 4, nested: nested), seed: seed)
      let model = try ConcreteModel(machine.state)
      for address in machine.addresses.prefix(4) {
        let walk = model.translate(address, Access(.read), recording: true)
        for entry in walk.references where entry.stage == .guest {
          for value in Self.values(count: 12, seed: seed &* 31 &+ entry.address) {
            var planted = model
            planted.state.memory[entry.address] = value
            let after = planted.translate(address, Access(.read), recording: true)
            // A value that makes the walk read itself elsewhere says nothing about this entry.
            let read = after.references.contains {
              $0.stage == .guest && $0.address == entry.address && $0.level == entry.level
            }
            guard read else { continue }
            let observed = Self.guestRole(after, level: entry.level)
            #expect(
              model.guestEntryRole(value, level: entry.level) == observed,
              "value \(hex(value)) at guest level \(entry.level)")
            checked += 1
          }
        }
      }
    }
    #expect(checked > 1_000)
  }

  @Test(arguments: [PagingShape.Nested.ept(levels: 4), .npt(levels: 4)])
  func aNestedEntrysRoleIsWhatTheNestedWalkDoesWithIt(nested: PagingShape.Nested) throws {
    var checked = 0
    for seed in UInt64(1)...24 {
      let machine = RandomMachine(shape: PagingShape(guestLevels: 4, nested: nested), seed: seed)
      let model = try ConcreteModel(machine.state)
      for address in machine.addresses.prefix(4) {
        let walk = model.translate(address, Access(.read), recording: true)
        // The nested walk of the top guest table: nothing before it can stop the access.
        let top = walk.references.prefix { $0.stage == .nestedTable }
        for entry in top {
          for value in Self.values(count: 12, seed: seed &* 17 &+ entry.address) {
            var planted = model
            planted.state.memory[entry.address] = value
            let after = planted.translate(address, Access(.read), recording: true)
            let first = after.references.prefix { $0.stage == .nestedTable }
            guard first.contains(where: { $0.address == entry.address }) else { continue }
            let observed: EntryRole =
              first.contains { $0.level < entry.level }
              ? .table
              : (after.decidingStage == .nestedTable && after.references.count == first.count
                && Self.stops(after.decidingRule) ? .stops : .leaf)
            #expect(
              model.nestedEntryRole(value, level: entry.level) == observed,
              "value \(hex(value)) at nested level \(entry.level)")
            checked += 1
          }
        }
      }
    }
    #expect(checked > 1_000)
  }

  static func stops(_ rule: Rule) -> Bool {
    switch rule {
    case .notPresent, .reservedBit, .eptNotPresent, .eptWriteWithoutRead,
      .eptExecuteOnlyUnsupported, .eptReservedBit, .eptBadMemoryType:
      true
    default: false
    }
  }

  @Test func withoutANestedDimensionEveryNestedEntryNamesATable() throws {
    let machine = RandomMachine(shape: PagingShape(guestLevels: 4, nested: .none), seed: 3)
    let model = try ConcreteModel(machine.state)
    for value: UInt64 in [0, 1, 1 << 7 | 1, UInt64.max] {
      #expect(model.nestedEntryRole(value, level: 2) == .table)
    }
  }
}
