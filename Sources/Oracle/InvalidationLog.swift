/// The tag of a cached translation, as far as the oracle's mode distinguishes them (SEMANTICS
/// §6.1 VPID and PCID, §6.2 EP4TA). Fields a mode does not tag by are 0.
struct CacheContext: Hashable, Sendable {
  var vpid: UInt64
  var pcid: UInt64
  var ep4ta: UInt64
}

/// One invalidation (SEMANTICS §6.1, §6.2): which tags it reaches, which addresses, and which
/// kinds of cached information.
struct Invalidation {
  /// Which VPIDs it reaches.
  enum VPIDScope: Equatable {
    case any
    case only(UInt64)
    /// INVVPID type 2: every VPID but 0.
    case allButZero
  }

  /// Which TLB entries it drops.
  enum TLBScope: Equatable {
    case none
    /// Entries without the global flag.
    case nonGlobal
    /// Every entry, global ones included.
    case all
  }

  var epoch: Int
  var vpid: VPIDScope = .any
  /// `nil`: every PCID.
  var pcid: UInt64? = nil
  /// `nil`: every EP4TA (or nested root).
  var ep4ta: UInt64? = nil
  /// `nil`: every address; otherwise the TLB entries for the page containing it (of any size)
  /// and the paging-structure entries that would be used for it.
  var address: UInt64? = nil
  var tlb: TLBScope = .none
  var pagingStructures = false

  /// Whether it reaches entries tagged `context`; a global TLB entry is not PCID-specific.
  func reaches(_ context: CacheContext, global: Bool) -> Bool {
    switch vpid {
    case .any: break
    case .only(let v): if v != context.vpid { return false }
    case .allButZero: if context.vpid == 0 { return false }
    }
    if let ep4ta, ep4ta != context.ep4ta { return false }
    if let pcid, !global, pcid != context.pcid { return false }
    return true
  }
}

/// A cache level of the abstract TLB model: the TLB itself, whose entries map a page of the
/// leaf's size, or the paging-structure cache of one level (2 = PDE cache … 5 = PML5E cache),
/// whose entries map the address bits above that level.
enum CacheLevel: Equatable {
  case translation(leafLevel: Int, global: Bool)
  case pagingStructure(level: Int)
}

/// Every invalidation of one kind of cached information since the start (or the last global
/// flush): linear and combined mappings (indexed by linear address), or guest-physical
/// mappings (indexed by guest-physical address). Answers "when is the first invalidation after
/// epoch e that drops this cached entry?" — how long a cached translation may survive.
struct InvalidationLog {
  /// Invalidations of every address, for TLB entries and for paging-structure entries.
  private var contextTLB: [Invalidation] = []
  private var contextPagingStructures: [Invalidation] = []
  /// Invalidations of one address, indexed by the region of each size that contains it
  /// (1: 4 KiB … 5: 256 TiB), so that a query for an entry of any size finds them.
  private var byRegion: [[UInt64: [Invalidation]]] = Array(repeating: [:], count: 6)
  /// The invalidations of everything in a context, counting non-global ones when no global
  /// entry can exist, and of everything for one 4-KiB page, oldest first: bounds for the fast
  /// path and for the explanation search (nothing read before one survives it).
  private var completeByContext: [CacheContext: [Int]] = [:]
  private var completeByPage: [PageKey: [Int]] = [:]
  private var globalComplete: [Int] = []

  private struct PageKey: Hashable {
    var context: CacheContext
    var page: UInt64
  }

  /// The size shift of a region at `level`.
  @inline(__always)
  static func shift(_ level: Int) -> UInt64 { UInt64(12 + 9 * (level - 1)) }

  /// Records the invalidations one operation makes (INVLPG makes two: the address's TLB
  /// entries, and every paging-structure entry of the PCID), all at one epoch. `contexts` are
  /// the tags that may hold cached entries (those seen so far); `globalsPossible` says whether a
  /// global entry may exist (CR4.PGE has been set since the last flush of global entries).
  /// What the events drop together counts as complete: for an address when one of them drops
  /// every TLB entry that could translate it and one every paging-structure entry it could use.
  mutating func record(
    _ events: [Invalidation], contexts: Set<CacheContext>, globalsPossible: Bool
  ) {
    for event in events {
      if let address = event.address {
        for level in 1...5 {
          byRegion[level][address >> Self.shift(level), default: []].append(event)
        }
      } else {
        if event.tlb != .none { contextTLB.append(event) }
        if event.pagingStructures { contextPagingStructures.append(event) }
      }
    }
    guard let epoch = events.first?.epoch else { return }
    let dropsTLB = events.filter {
      $0.tlb == .all || ($0.tlb == .nonGlobal && !globalsPossible)
    }
    let dropsPagingStructures = events.filter(\.pagingStructures)
    guard !dropsTLB.isEmpty, !dropsPagingStructures.isEmpty else { return }
    for context in contexts {
      guard
        let tlb = dropsTLB.first(where: { $0.reaches(context, global: false) }),
        let structures = dropsPagingStructures.first(where: { $0.reaches(context, global: false) })
      else { continue }
      switch (tlb.address, structures.address) {
      case (nil, nil):
        completeByContext[context, default: []].append(epoch)
      case (let address?, nil), (nil, let address?):
        completeByPage[PageKey(context: context, page: address >> 12), default: []].append(epoch)
      case (let a?, let b?):
        if a >> 12 == b >> 12 {
          completeByPage[PageKey(context: context, page: a >> 12), default: []].append(epoch)
        }
      }
    }
    let everywhere = { (e: Invalidation) in
      e.address == nil && e.vpid == .any && e.pcid == nil && e.ep4ta == nil
    }
    if dropsTLB.contains(where: everywhere) && dropsPagingStructures.contains(where: everywhere) {
      globalComplete.append(epoch)
    }
  }

  /// The epoch of the last invalidation that dropped everything cached for `address` in
  /// `context`: nothing filled before it can be used now.
  func lastComplete(_ address: UInt64, _ context: CacheContext) -> Int {
    max(
      completeByContext[context]?.last ?? Int.min,
      completeByPage[PageKey(context: context, page: address >> 12)]?.last ?? Int.min,
      globalComplete.last ?? Int.min)
  }

  /// The epoch of the last invalidation at or before `epoch` that dropped everything cached for
  /// `address` in `context`: a cached piece read before it cannot be used at `epoch` or later.
  func lastComplete(_ address: UInt64, _ context: CacheContext, atOrBefore epoch: Int) -> Int {
    max(
      Self.last(completeByContext[context] ?? [], atOrBefore: epoch),
      Self.last(
        completeByPage[PageKey(context: context, page: address >> 12)] ?? [], atOrBefore: epoch),
      Self.last(globalComplete, atOrBefore: epoch))
  }

  /// The epoch of the last invalidation that dropped everything cached in `context`, for every
  /// address.
  func lastComplete(_ context: CacheContext) -> Int {
    max(completeByContext[context]?.last ?? Int.min, globalComplete.last ?? Int.min)
  }

  /// The epoch of the last invalidation of everything, in every context.
  var lastGlobal: Int { globalComplete.last ?? Int.min }

  /// The last of ascending `epochs` at or before `epoch`; `Int.min` if none is.
  private static func last(_ epochs: [Int], atOrBefore epoch: Int) -> Int {
    guard let latest = epochs.last else { return Int.min }
    if latest <= epoch { return latest }
    var low = 0
    var high = epochs.count
    while low < high {
      let middle = (low + high) / 2
      if epochs[middle] <= epoch { low = middle + 1 } else { high = middle }
    }
    return low > 0 ? epochs[low - 1] : Int.min
  }

  /// The first epoch after `epoch` at which an invalidation drops the cached entry of `level`
  /// for `address` in `context`; `Int.max` if none has so far.
  func nextKill(
    after epoch: Int, _ level: CacheLevel, address: UInt64, context: CacheContext
  ) -> Int {
    switch level {
    case .translation(let leafLevel, let global):
      let matches = { (e: Invalidation) -> Bool in
        (e.tlb == .all || (e.tlb == .nonGlobal && !global)) && e.reaches(context, global: global)
      }
      return min(
        Self.first(contextTLB, after: epoch, where: matches),
        Self.first(
          byRegion[leafLevel][address >> Self.shift(leafLevel)] ?? [], after: epoch,
          where: matches))
    case .pagingStructure(let level):
      let matches = { (e: Invalidation) -> Bool in
        e.pagingStructures && e.reaches(context, global: false)
      }
      return min(
        Self.first(contextPagingStructures, after: epoch, where: matches),
        Self.first(
          byRegion[level][address >> Self.shift(level)] ?? [], after: epoch, where: matches))
    }
  }

  /// The epoch of the latest invalidation so far that drops the cached entry of `level` for
  /// `address` in `context`; `Int.min` if none has.
  func lastKill(_ level: CacheLevel, address: UInt64, context: CacheContext) -> Int {
    switch level {
    case .translation(let leafLevel, let global):
      let matches = { (e: Invalidation) -> Bool in
        (e.tlb == .all || (e.tlb == .nonGlobal && !global)) && e.reaches(context, global: global)
      }
      return max(
        Self.last(contextTLB, where: matches),
        Self.last(byRegion[leafLevel][address >> Self.shift(leafLevel)] ?? [], where: matches))
    case .pagingStructure(let level):
      let matches = { (e: Invalidation) -> Bool in
        e.pagingStructures && e.reaches(context, global: false)
      }
      return max(
        Self.last(contextPagingStructures, where: matches),
        Self.last(byRegion[level][address >> Self.shift(level)] ?? [], where: matches))
    }
  }

  /// The epoch of the last event of an ascending list that `matches`.
  private static func last(_ events: [Invalidation], where matches: (Invalidation) -> Bool)
    -> Int
  {
    for event in events.reversed() where matches(event) { return event.epoch }
    return Int.min
  }

  /// The epoch of the first event after `epoch` in an ascending list that `matches`.
  private static func first(
    _ events: [Invalidation], after epoch: Int, where matches: (Invalidation) -> Bool
  ) -> Int {
    var low = 0
    var high = events.count
    while low < high {
      let middle = (low + high) / 2
      if events[middle].epoch <= epoch { low = middle + 1 } else { high = middle }
    }
    for index in low..<events.count where matches(events[index]) { return events[index].epoch }
    return Int.max
  }

  /// Forgets what happened before `horizon`, after a global invalidation there.
  mutating func forget(before horizon: Int) {
    contextTLB.removeAll { $0.epoch < horizon }
    contextPagingStructures.removeAll { $0.epoch < horizon }
    for level in 1...5 {
      byRegion[level] = byRegion[level].compactMapValues { list in
        let kept = list.filter { $0.epoch >= horizon }
        return kept.isEmpty ? nil : kept
      }
    }
    // Of the complete invalidations before the horizon only the last can still bound a query.
    completeByPage = completeByPage.mapValues { Self.keep($0, from: horizon) }
    completeByContext = completeByContext.mapValues { Self.keep($0, from: horizon) }
    globalComplete = Self.keep(globalComplete, from: horizon)
  }

  /// The ascending `epochs` from `horizon` on, and the last one before it.
  private static func keep(_ epochs: [Int], from horizon: Int) -> [Int] {
    guard let first = epochs.firstIndex(where: { $0 >= horizon }) else {
      return Array(epochs.suffix(1))
    }
    return Array(epochs[max(0, first - 1)...])
  }
}
