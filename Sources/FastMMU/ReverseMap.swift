/// The reverse map (SEMANTICS §5.1 `rmap`): for each guest frame, the host addresses of the
/// leaf shadow entries that map it, as KVM's `pte_list` keeps them (one entry inline, more in
/// an array). Used to write-protect a frame that becomes a shadowed page table.
struct ReverseMap {
  private enum Entries {
    case one(UInt64)
    case many([UInt64])
  }

  private var map: [UInt64: Entries] = [:]

  /// Records that the shadow entry at `entry` maps `gfn`.
  mutating func add(_ gfn: UInt64, entry: UInt64) {
    switch map[gfn] {
    case nil: map[gfn] = .one(entry)
    case .one(let first): map[gfn] = .many([first, entry])
    case .many(var list):
      list.append(entry)
      map[gfn] = .many(list)
    }
  }

  /// Forgets that the shadow entry at `entry` maps `gfn`.
  mutating func remove(_ gfn: UInt64, entry: UInt64) {
    switch map[gfn] {
    case nil: return
    case .one(let only): if only == entry { map[gfn] = nil }
    case .many(var list):
      list.removeAll { $0 == entry }
      map[gfn] = list.count == 1 ? .one(list[0]) : (list.isEmpty ? nil : .many(list))
    }
  }

  /// The shadow entries that map `gfn`.
  func entries(_ gfn: UInt64) -> [UInt64] {
    switch map[gfn] {
    case nil: []
    case .one(let only): [only]
    case .many(let list): list
    }
  }

  /// Forgets everything.
  mutating func removeAll() { map = [:] }
}
