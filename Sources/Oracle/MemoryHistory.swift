/// Every value a memory word has held, with the epoch from which it held it: what a cached
/// translation may still reflect (SEMANTICS §6.1: a translation may be used if it was valid at
/// some point since the last invalidation covering it).
///
/// Epochs number the operations of a trace. A word that was never written has held one value
/// since the start and has no entry here. Accessed/dirty updates made by walks change the
/// current value in place; for the entry format whose A/D bits they are they change no
/// translation, only whether a walk writes (tracked as certain or uncertain bits,
/// ``UncertainBits``). But a word may be read in both dimensions — a guest table the nested
/// tables point into — and the other format gives those bits a meaning: bits 5 and 6 of an
/// EPT entry are memory type (leaf) or reserved (table), bit 8 of a guest entry is G. Such an
/// update is a version seen by the other dimension only (``Version/seenBy``): a nested entry
/// cached before a guest walk set A in the same word still holds the value without it.
struct MemoryHistory {
  /// Which dimensions' reads a version is a change for.
  struct Readers: OptionSet, Hashable {
    let rawValue: UInt8
    /// Guest paging-structure reads.
    static let guest = Readers(rawValue: 1)
    /// Nested (EPT, NPT, P2M) reads.
    static let nested = Readers(rawValue: 2)
    /// A store: a change for every reader.
    static let all: Readers = [.guest, .nested]
  }

  /// One value of a word and the first epoch at which it held it.
  struct Version: Hashable {
    var start: Int
    var value: UInt64
    /// The readers for which it is a new value; for the others it continues the version
    /// before (it differs from it only in bits their format gives no meaning).
    var seenBy: Readers = .all
    /// A/D bits that were uncertain when it stopped being current (``UncertainBits``): a copy
    /// cached while it was may hold them set.
    var uncertain: UInt64 = 0
  }

  /// Written words: every version, oldest first; the last is the current value (whose
  /// accessed/dirty bits may since have changed in memory).
  private(set) var versions: [UInt64: [Version]] = [:]

  /// Records that the word at `address` was stored at `epoch`, `old` becoming `new` (perhaps
  /// equal, when the old value's A/D bits were uncertain: a cached copy may predate the store).
  /// `oldUncertain` holds the bits of `old` that were uncertain.
  mutating func recordWrite(
    _ address: UInt64, old: UInt64, new: UInt64, epoch: Int, seenBy readers: Readers = .all,
    oldUncertain: UInt64 = 0
  ) {
    let version = Version(start: epoch, value: new, seenBy: readers)
    if var list = versions[address] {
      versions[address] = nil
      list[list.count - 1].uncertain |= oldUncertain
      list.append(version)
      versions[address] = list
    } else {
      versions[address] = [
        Version(start: Int.min, value: old, uncertain: oldUncertain), version,
      ]
    }
  }

  /// The epoch at which the word took its current value for `readers`; `Int.min` if it never
  /// changed for them.
  @inline(__always)
  func lastChange(_ address: UInt64, for readers: Readers = .all) -> Int {
    guard let list = versions[address] else { return Int.min }
    for version in list.reversed() where !version.seenBy.isDisjoint(with: readers) {
      return version.start
    }
    return Int.min
  }

  /// The interval of epochs during which version `index` of a word was current.
  static func interval(_ versions: [Version], _ index: Int) -> ClosedRange<Int> {
    let end = index + 1 < versions.count ? versions[index + 1].start - 1 : Int.max
    return versions[index].start...max(versions[index].start, end)
  }

  /// Forgets the versions that stopped being current before `horizon`: no cached translation
  /// can reflect them any more.
  mutating func forget(before horizon: Int) {
    for (address, list) in versions {
      guard let keep = list.indices.last(where: { list[$0].start < horizon }), keep > 0 else {
        continue
      }
      let rest = Array(list[keep...])
      versions[address] = rest.count > 1 ? rest : nil
    }
  }
}

/// Accessed and dirty bits whose value the oracle cannot know: set by one allowed behaviour and
/// not by another (an upper-level A on a faulting walk, §1.8; a translation that may have come
/// from a TLB entry, §6.1; the order of guest A/D writes and the final translation, §4.1).
struct UncertainBits {
  private(set) var bits: [UInt64: UInt64] = [:]

  /// The uncertain bits of the word at `address`.
  @inline(__always)
  subscript(address: UInt64) -> UInt64 { bits[address] ?? 0 }

  /// Marks `mask` uncertain in the word at `address`.
  mutating func add(_ address: UInt64, _ mask: UInt64) {
    guard mask != 0 else { return }
    bits[address, default: 0] |= mask
  }

  /// The word at `address` now holds a known value.
  mutating func clear(_ address: UInt64) { bits[address] = nil }

  /// The bits of `mask` at `address` are now known.
  mutating func settle(_ address: UInt64, _ mask: UInt64) {
    guard let current = bits[address] else { return }
    let rest = current & ~mask
    bits[address] = rest == 0 ? nil : rest
  }

  /// Whether no bit is uncertain anywhere.
  var isEmpty: Bool { bits.isEmpty }
}
