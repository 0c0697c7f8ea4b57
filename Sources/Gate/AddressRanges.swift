/// A half-open range of addresses, `lower ..< upper`, that may reach the top of the 64-bit space
/// (`upper` is then 2^64, held as `end == nil`).
///
/// Mappings, host ranges and table areas are all address ranges; keeping the arithmetic in one
/// place keeps overflow out of the rules that use them.
struct AddressRange: Hashable, Sendable, CustomStringConvertible {
  /// The first address.
  var lower: UInt64
  /// The number of bytes; never zero.
  var size: UInt64

  /// The last address in the range.
  var last: UInt64 { lower &+ (size &- 1) }

  /// Whether the two ranges share an address.
  func overlaps(_ other: AddressRange) -> Bool {
    lower <= other.last && other.lower <= last
  }

  /// Whether `address` lies in the range.
  func contains(_ address: UInt64) -> Bool {
    address >= lower && address - lower < size
  }

  /// `0xLOWER–0xLAST`, both inclusive.
  var description: String { "0x\(String(lower, radix: 16))–0x\(String(last, radix: 16))" }
}

/// A set of addresses kept as sorted, disjoint, non-adjacent ranges: the frames that are taken,
/// or the frames a dimension backs.
struct AddressSet: Sendable {
  /// The ranges, sorted by their first address, none touching another.
  private(set) var ranges: [AddressRange] = []

  /// Adds every address of `range`.
  mutating func insert(_ range: AddressRange) {
    var merged = range
    var kept: [AddressRange] = []
    kept.reserveCapacity(ranges.count + 1)
    for existing in ranges {
      let touches =
        existing.overlaps(merged)
        || (existing.last != UInt64.max && existing.last + 1 == merged.lower)
        || (merged.last != UInt64.max && merged.last + 1 == existing.lower)
      if touches {
        let lower = min(existing.lower, merged.lower)
        let last = max(existing.last, merged.last)
        merged = AddressRange(lower: lower, size: last - lower &+ 1)
      } else {
        kept.append(existing)
      }
    }
    kept.append(merged)
    ranges = kept.sorted { $0.lower < $1.lower }
  }

  /// The range that holds `address`, if any.
  func range(containing address: UInt64) -> AddressRange? {
    var low = 0
    var high = ranges.count
    while low < high {
      let middle = (low + high) / 2
      if ranges[middle].last < address {
        low = middle + 1
      } else {
        high = middle
      }
    }
    guard low < ranges.count, ranges[low].contains(address) else { return nil }
    return ranges[low]
  }

  /// The first range that ends at or after `address`, if any.
  func firstRange(endingAtOrAfter address: UInt64) -> AddressRange? {
    ranges.first { $0.last >= address }
  }

  /// The first address of `range` that is not in the set, or `nil` when the set covers it all.
  func firstMissing(in range: AddressRange) -> UInt64? {
    var address = range.lower
    while true {
      guard let holder = self.range(containing: address) else { return address }
      if holder.last >= range.last { return nil }
      address = holder.last + 1
    }
  }

  /// The first address of `range` that is in the set, or `nil` when they are disjoint.
  func firstPresent(in range: AddressRange) -> UInt64? {
    if contains(range.lower) { return range.lower }
    guard let next = firstRange(endingAtOrAfter: range.lower), next.lower <= range.last else {
      return nil
    }
    return next.lower
  }

  /// Whether `address` is in the set.
  func contains(_ address: UInt64) -> Bool { range(containing: address) != nil }
}

/// Finds the first pair of overlapping ranges in a list, reporting the later of the two (in list
/// order) first: the one whose position an error should point at.
///
/// - Returns: `(later, earlier)` indices, or `nil` when no two ranges overlap. Among several
///   overlaps, the one with the smallest later index is returned, so the report is stable.
func firstOverlap(_ ranges: [AddressRange]) -> (later: Int, earlier: Int)? {
  let order = ranges.indices.sorted {
    ranges[$0].lower != ranges[$1].lower ? ranges[$0].lower < ranges[$1].lower : $0 < $1
  }
  var best: (later: Int, earlier: Int)?
  var reach: Int?  // the index, among those seen, whose range ends last
  for index in order {
    if let holder = reach, ranges[holder].overlaps(ranges[index]) {
      let pair = (later: max(holder, index), earlier: min(holder, index))
      if best.map({ pair.later < $0.later }) ?? true { best = pair }
    }
    if reach.map({ ranges[index].last > ranges[$0].last }) ?? true { reach = index }
  }
  return best
}
