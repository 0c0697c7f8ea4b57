import Machine
import ReferenceModel

/// The search for an explanation of an observed outcome (docs/fuzzing.md, "how the oracle
/// decides"): a walk of the reference model in which each entry read may see any value the
/// entry held at an epoch from which a cached copy could have survived until now.
///
/// SEMANTICS §6.1 as a rule on epochs: a walk reads its levels top-down at epochs
/// t(top) ≤ … ≤ t(leaf) ≤ now. Reading a level later than the one above means the upper part
/// came from a paging-structure cache: it must survive, no invalidation of that cache level
/// covering the address between the two epochs. A leaf older than now is a TLB entry: it must
/// survive until now. An entry that stops the walk (not present, reserved bits; §6.1: never
/// cached) is read now. Each nested walk — the guest-physical translation of a guest table or
/// of the final address (§6.2, guest-physical mappings and their caches) — is such a chain of
/// its own, under guest-physical invalidations. Each cached piece starts at a root the guest
/// had at that epoch in the current context (PCID, and VPID and EP4TA under nested paging).
///
/// The search is a depth-first exploration: run the walk with every entry at its current value;
/// for each entry read whose earlier values fit its window, run again with that value; prune
/// branches whose epochs cannot chain. A value is chosen per memory word, and, for a guest word
/// read again at another level of the walk (a table that maps itself), per level too; two
/// reads of one word in one nested walk see the same version (a narrowing documented in
/// docs/fuzzing.md). Every
/// complete, feasible assignment is evaluated under the preferred IMPL choices and, for nested
/// faults, under every combination of the choices that shape them (§8).
struct ExplanationSearch {
  /// One way the architecture produces the observed outcome, and what it writes.
  struct Explanation {
    /// Guest A/D bits it certainly writes (address → bits).
    var certain: [UInt64: UInt64] = [:]
    /// Guest A/D bits it may write (a faulting walk's upper-level A, §1.8).
    var possible: [UInt64: UInt64] = [:]
    /// Nested A/D bits it writes.
    var nested: [UInt64: UInt64] = [:]
    /// Whether it reads a value older than the current one, or an earlier root.
    var stale = false
  }

  /// A value a word may be read with, and the epochs during which it held it.
  struct Option: Hashable {
    var value: UInt64
    var epochs: Epochs
    /// The word holds this value now (for a nested read, possibly with uncertain bits resolved
    /// as set).
    var current: Bool
  }

  /// A partial assignment: the root the walk starts from, the values chosen for the words the
  /// guest walk reads, and for each nested walk (by the guest-physical address it translates)
  /// the values chosen for the words it reads.
  struct Candidate {
    var root: UInt64
    var rootEpochs: ClosedRange<Int>
    var pins: Pins
    var nestedPins: NestedPins = NestedPins()
    /// The guest levels from this one up are read as reads, as they were while EPT A/D flags
    /// were off (``Oracle/cachedWithoutAccessedDirty``): each of their entries must be one read
    /// then. The levels below are read now, as writes (§2.4). `nil`: every level is read now.
    var readsAsReadsFrom: Int? = nil
  }

  /// Chosen values by word: a handful per walk, so a list searched in order is cheaper than
  /// hashing. In a guest walk a word may be read at two levels (a table that maps itself): the
  /// level it was first chosen at is kept, and a value chosen for another level of it apart —
  /// the upper read may come from a paging-structure cache and the lower from memory (§6.1).
  struct Pins {
    private(set) var entries: [(word: UInt64, option: Option)] = []
    /// The guest level each word of ``entries`` was chosen at (0 in a nested walk).
    private var levels: [Int] = []
    /// Values chosen for a word at a guest level other than the one it was first chosen at.
    private(set) var again: [(word: UInt64, level: Int, option: Option)] = []

    /// The value chosen for `word`, if one was.
    subscript(word: UInt64) -> Option? {
      for entry in entries where entry.word == word { return entry.option }
      return nil
    }

    /// The guest level `word`'s value was first chosen at.
    func level(of word: UInt64) -> Int? {
      for index in entries.indices where entries[index].word == word { return levels[index] }
      return nil
    }

    /// The value chosen for `word` where a guest walk reads it again, at `level`.
    func chosenAgain(_ word: UInt64, level: Int) -> Option? {
      for entry in again where entry.word == word && entry.level == level { return entry.option }
      return nil
    }

    /// The value chosen for `word` where a guest walk reads it at `level`.
    func option(_ word: UInt64, level: Int) -> Option? {
      chosenAgain(word, level: level) ?? self[word]
    }

    /// Chooses `option` for `word`, first read at guest `level` (0 in a nested walk).
    mutating func choose(_ word: UInt64, _ option: Option, level: Int = 0) {
      if let index = entries.firstIndex(where: { $0.word == word }) {
        entries[index].option = option
      } else {
        entries.append((word, option))
        levels.append(level)
      }
    }

    /// Chooses `option` for `word` where it is read again, at guest `level`.
    mutating func choose(_ word: UInt64, _ option: Option, again level: Int) {
      if let index = again.firstIndex(where: { $0.word == word && $0.level == level }) {
        again[index].option = option
      } else {
        again.append((word, level, option))
      }
    }

    /// Whether some chosen value is an older one.
    var anyStale: Bool {
      entries.contains { !$0.option.current } || again.contains { !$0.option.current }
    }
  }

  /// Chosen values per nested walk, by the guest-physical address it translates.
  struct NestedPins {
    private(set) var entries: [(gpa: UInt64, pins: Pins)] = []

    /// The values chosen for the nested walk of `gpa`.
    subscript(gpa: UInt64) -> Pins? {
      for entry in entries where entry.gpa == gpa { return entry.pins }
      return nil
    }

    /// Chooses `option` for `word` in the nested walk of `gpa`.
    mutating func set(_ gpa: UInt64, _ word: UInt64, _ option: Option) {
      if let index = entries.firstIndex(where: { $0.gpa == gpa }) {
        entries[index].pins.choose(word, option)
      } else {
        var pins = Pins()
        pins.choose(word, option)
        entries.append((gpa, pins))
      }
    }

    /// Whether some chosen value is an older one.
    var anyStale: Bool { entries.contains { $0.pins.anyStale } }
  }

  /// Per nested walk (0: the final translation; 1–5: the guest table read at that level), its
  /// chain and the guest-physical address it translates.
  struct NestedChains {
    private var slots: [NestedWalk?] = Array(repeating: nil, count: 6)

    subscript(key: Int) -> NestedWalk? {
      get { slots[key] }
      set { slots[key] = newValue }
    }

    /// The walks that read something, with their keys.
    var present: [(key: Int, entry: NestedWalk)] {
      slots.indices.compactMap { index in slots[index].map { (index, $0) } }
    }
  }

  /// One nested walk of a candidate: its chain, the guest-physical address it translates, and
  /// the earliest epoch at which its translation can be used (the earliest the guest read that
  /// uses it can happen).
  struct NestedWalk {
    var chain: Chain
    var gpa: UInt64
    var useFrom: Int
  }

  /// Per chain (the guest walk, or one nested walk): the feasible epochs of the last read.
  struct Chain {
    var top: Epochs
    var level = 0
    var feasible: Epochs? = nil
  }

  let oracle: Oracle
  let address: UInt64
  let access: Access
  let observed: Outcome
  let now: Int
  /// Guest-table accesses may have been reads (``Oracle/cachedWithoutAccessedDirty``).
  private let oldTableReads: Bool
  /// ``Oracle/accessedDirtyWritesCannotFault``, but for a search in which some candidates read
  /// guest entries as reads (``Candidate/readsAsReadsFrom``): an A/D write to an entry read
  /// then needs a right its read did not, so the search branches on uncertain A/D bits.
  private let accessedDirtyWritesCannotFault: Bool
  /// The oracle's invalidation logs, which no search changes, held here: reading them through
  /// the oracle copies them (their tables counted once more and once less) at every use.
  private let linearLog: InvalidationLog
  private let physicalLog: InvalidationLog
  /// Whether ``outcomes`` must hold every outcome a walk of the search gives under any of the
  /// choices that shape nested faults, for the report of a divergence; otherwise a walk is
  /// re-run under those choices only where that can give the observed outcome.
  private let listsEveryOutcome: Bool
  private(set) var outcomes: [Outcome] = []
  private(set) var explanations: [Explanation] = []
  private(set) var limitReached = false
  /// Whether the explanations found so far decide everything the rest could: together they
  /// write nothing certainly and may write every A/D bit any walk of the address could still
  /// change (``unjudged()`` less what is set or uncertain already). The search then stops: the
  /// oracle applies the same either way (Oracle/apply).
  private(set) var saturated = false
  private var runs = 0
  /// What the explanations found so far all write certainly (`nil` before the first), and
  /// what any writes, certainly or possibly.
  private var commonWrites: [UInt64: UInt64]? = nil
  private var anyWrites: [UInt64: UInt64] = [:]
  /// ``unjudged()`` less the bits already set or uncertain, once computed; and the nested
  /// table frames it met, where walks not run may have set nested A/D bits.
  private var changeable: [UInt64: UInt64]? = nil
  private(set) var nestedTables: Set<UInt64> = []
  /// A search checks whether it is saturated only once it has run this many walks: computing
  /// ``changeable`` costs a few walks' worth, which small searches need not pay.
  static let saturationCheckRuns = 8
  /// ``options(_:current:guest:nestedMask:)`` by word (bit 0: read as a guest entry).
  private var optionCache: [UInt64: [Option]] = [:]
  /// Walks one search may run before it gives up and accepts.
  static let runLimit = 2048
  /// Walks a search may run when the fresh walk already gives the observed fault: the search
  /// then decides only which A/D bits become uncertain (after a fault none is known, Oracle/
  /// apply), and giving up makes uncertain every one a walk of the address could write.
  static let explainedFaultRunLimit = 512
  /// The walks this search may run (``runLimit``, or ``explainedFaultRunLimit``, at most the
  /// oracle's ``Oracle/searchWalkLimit``).
  private let walkLimit: Int
  /// The guest accessed and dirty flags (bits 5 and 6 of an x86 entry).
  static let accessedBit: UInt64 = 1 << 5
  static let dirtyBit: UInt64 = 1 << 6

  /// A search of `observed` at `address`; `freshGivesIt` when the fresh walk under the
  /// preferred choices already gives it.
  init(
    oracle: Oracle, address: UInt64, access: Access, observed: Outcome,
    listsEveryOutcome: Bool = false, freshGivesIt: Bool = false
  ) {
    self.oracle = oracle
    self.address = address
    self.access = access
    self.observed = observed
    self.listsEveryOutcome = listsEveryOutcome
    now = oracle.epoch
    oldTableReads = oracle.cachedWithoutAccessedDirty
    accessedDirtyWritesCannotFault = oracle.accessedDirtyWritesCannotFault && !oldTableReads
    linearLog = oracle.linear
    physicalLog = oracle.physical
    walkLimit =
      freshGivesIt && observed.isFault
      ? min(oracle.searchWalkLimit, Self.explainedFaultRunLimit) : oracle.searchWalkLimit
  }

  var explained: Bool { !explanations.isEmpty }

  /// A copy of the oracle's memory without the current walk's overlay (`saved` holds the
  /// overlaid words' own values), from the oracle's pool (``MemoryViews``).
  private func spareView(unpinning saved: [(word: UInt64, value: UInt64)]) -> FrameMemory {
    oracle.views.take {
      var copy = oracle.model.state.memory
      for (word, value) in saved { copy[word] = value }
      return copy
    }
  }

  /// Explores every root the current context had, most recent first.
  mutating func run() {
    let currentRoot = oracle.model.state.guest.root
    defer { oracle.model.state.guest.root = currentRoot }
    guard oracle.guestLevels > 0 else {
      visit(Candidate(root: currentRoot, rootEpochs: Int.min...now, pins: Pins()))
      return
    }
    // Nothing read before the last invalidation of everything cached for the address can end
    // a walk now (§6.1): neither its root nor any entry.
    let bound = linearLog.lastComplete(address, oracle.linearContext)
    let windows = oracle.timeline.windows(oracle.linearContext, within: bound...now)
    for window in windows {
      visit(Candidate(root: window.root, rootEpochs: window.epochs, pins: Pins()))
      if limitReached || saturated { return }
    }
    guard oldTableReads else { return }
    // A paging-structure cache may have kept the entries of any number of upper levels from
    // then (§6.1): the walk reads those as reads and the rest now.
    for window in windows where window.epochs.lowerBound <= oracle.accessedDirtyOffEnd {
      for level in stride(from: oracle.guestLevels, through: 1, by: -1) {
        var older = Candidate(root: window.root, rootEpochs: window.epochs, pins: Pins())
        older.readsAsReadsFrom = level
        visit(older)
        if limitReached || saturated { return }
      }
    }
  }

  /// The values a word may be read with: every version it held and the current one; for a
  /// nested read of a word with uncertain bits its entry format does not ignore, the current
  /// one with them set too.
  ///
  /// A guest entry's accessed/dirty bits decide no fault of its own walk (an x86 walk never
  /// faults on them, nor does a cached entry's survival): they decide whether the walk writes
  /// them, and that write is a nested access which faults only where it needs a right the read
  /// did not — EPT without A/D flags (§2.4: the read needs R, the write W). Elsewhere
  /// (``Oracle/accessedDirtyWritesCannotFault``) a guest read does not branch on uncertain A/D
  /// bits: they are read clear, and a walk that then sets them leaves them set in either case
  /// (set before, or set now) — memory ends the same, and that is what an explanation tells.
  /// A guest word's older values equal but for their A/D bits are one option: a walk reading an
  /// older value writes nothing to it (``collect(_:seen:into:nested:)``), and what its A/D
  /// write does to the outcome depends on the nested walk, not on the value. Its current value
  /// is never merged with an older one: whether a walk's A/D write lands depends on whether the
  /// value it read is still the current one.
  ///
  /// A nested read ignores `nestedMask`, the bits no outcome of it depends on (a nested entry's
  /// A/D bits: no walk faults on them, they only decide whether the walk writes them, and no
  /// observation or memory comparison depends on that, docs/fuzzing.md). Versions equal but
  /// for those bits are one option, read at any of their epochs, with the latest one's value;
  /// so are versions of equal value (a value stored back): the search need not branch on them.
  /// Without this, every host store of a nested entry's own value (its A/D bits cleared) would
  /// double the nested walks of every guest table (the nested false alarm of seed 1, operation
  /// 260,999). Uncertain bits are guest A/D bits (bits 5 and 6): an EPT entry's memory type
  /// holds them, so a nested read of such a word branches on them.
  private mutating func options(
    _ word: UInt64, current: UInt64? = nil, guest: Bool, nestedMask: UInt64
  ) -> [Option] {
    // History, uncertain bits and the word's own value do not change during a search.
    let key = word | (guest ? 1 : 0)
    if let known = optionCache[key] { return known }
    let result = computeOptions(word, current: current, guest: guest, nestedMask: nestedMask)
    optionCache[key] = result
    return result
  }

  private func computeOptions(
    _ word: UInt64, current: UInt64?, guest: Bool, nestedMask: UInt64
  ) -> [Option] {
    let value = current ?? oracle.model.state.memory[word]
    let ignored = guest ? EntryMasks.accessedDirty : nestedMask
    var result: [Option] = []
    var currentEpochs = Epochs(Int.min...Int.max)
    if let versions = oracle.history.versions[word] {
      let reader: MemoryHistory.Readers = guest ? .guest : .nested
      var previous = 0
      var uncertainOlder: [Option] = []
      for index in versions.indices {
        let last = index == versions.count - 1
        let held = last ? value : versions[index].value
        let epochs = Epochs(MemoryHistory.interval(versions, index))
        // An older value's bits uncertain while it was current: a copy cached then may hold
        // them set (they are read as the current value's are, below).
        let wasUncertain =
          last
          ? 0
          : guest
            ? (accessedDirtyWritesCannotFault ? 0 : versions[index].uncertain)
            : versions[index].uncertain & ~nestedMask
        if wasUncertain != 0 {
          uncertainOlder.append(Option(value: held | wasUncertain, epochs: epochs, current: false))
        }
        if index > 0 && !versions[index].seenBy.contains(reader) {
          // An A/D update this reader's format ignores: the version before goes on.
          result[previous].value = held
          result[previous].epochs = result[previous].epochs.union(epochs)
          result[previous].current = last
          continue
        }
        let mergeable = guest ? !last : ignored != 0
        if mergeable,
          let same = result.firstIndex(where: {
            !(guest && $0.current) && ($0.value ^ held) & ~ignored == 0
          })
        {
          if !guest { result[same].value = held }
          result[same].epochs = result[same].epochs.union(epochs)
          result[same].current = last
          previous = same
        } else {
          previous = result.count
          result.append(Option(value: held, epochs: epochs, current: last))
        }
      }
      result += uncertainOlder
      currentEpochs = Epochs(MemoryHistory.interval(versions, versions.count - 1))
    } else {
      result.append(Option(value: value, epochs: currentEpochs, current: true))
    }
    let unknown =
      guest
      ? (accessedDirtyWritesCannotFault ? 0 : oracle.uncertain[word])
      : oracle.uncertain[word] & ~nestedMask
    if unknown != 0 {
      result.append(Option(value: value | unknown, epochs: currentEpochs, current: true))
    }
    return result
  }

  /// The guest A/D bits some walk of the address giving the observed outcome could write,
  /// whatever values it reads: A in every guest entry it may read whose current value is
  /// present, D too in those whose current value is a leaf, on a write; after a guest page
  /// fault, A only in those whose current value is a table (§1.8). What a
  /// search that gives up cannot rule out: the walk that happened may be one it did not run
  /// (a translated write through stale nested entries sets the guest leaf's A and D, §1.8,
  /// §6.1). An over-approximation by entry layout (present bit, page-size bit) alone: from every
  /// root the current context had, each entry is followed through every value it held, and each
  /// guest table's guest-physical address through every value its nested entries held; rights
  /// and reserved bits are not looked at.
  func unjudged() -> [UInt64: UInt64] {
    var frames: Set<UInt64> = []
    return unjudged(nestedTables: &frames)
  }

  /// ``unjudged()``, and in `nestedTables` the frames of every nested table those walks, and
  /// the final translations of their leaves, may read (by the same layout): where they may set
  /// nested A/D bits.
  func unjudged(nestedTables frames: inout Set<UInt64>) -> [UInt64: UInt64] {
    let levels = oracle.guestLevels
    guard levels > 0 else { return [:] }
    let guestMask = EntryMasks.address(bits: oracle.processor.physicalAddressBits)
    let write = access.kind == .write
    // What a walk writes lands only on a word it read with its current value
    // (``collect(_:seen:into:nested:)``), and only where that value is present (§1.8): A there,
    // and D too on a write where it is a leaf. A walk that ends in a guest page fault writes
    // no D bit and leaves its leaf's A alone (§1.8): only A, where the current value is a table.
    let guestFault: Bool
    if case .pageFault = observed { guestFault = true } else { guestFault = false }
    var result: [UInt64: UInt64] = [:]
    let windows = oracle.timeline.windows(oracle.linearContext, within: Int.min...now)
    var tables = Set(windows.map { $0.root & guestMask })
    tables.insert(oracle.model.state.guest.root & guestMask)
    for level in stride(from: levels, through: 1, by: -1) {
      var next: Set<UInt64> = []
      let index = address >> UInt64(12 + 9 * (level - 1)) & 0x1FF
      for table in tables {
        for entry in hostAddresses(table | index << 3, tables: &frames) {
          let current = oracle.model.state.memory[entry]
          var bits: UInt64 = 0
          if current & 1 != 0 && (!guestFault || Self.isGuestTable(current, level)) {
            bits |= Self.accessedBit
          }
          if write && !guestFault && current & 1 != 0 && !Self.isGuestTable(current, level) {
            bits |= Self.dirtyBit
          }
          for value in values(entry) where value & 1 != 0 {
            if !Self.isGuestTable(value, level) {
              let size: UInt64 = 1 << UInt64(12 + 9 * (level - 1))
              _ = hostAddresses(
                value & guestMask & ~(size - 1) | address & (size - 1), tables: &frames)
            } else {
              next.insert(value & guestMask)
            }
          }
          if bits != 0 { result[entry, default: 0] |= bits }
        }
      }
      tables = next
    }
    return result
  }

  /// Whether a present guest entry read at `level` points to a table (SEMANTICS §1: level 1
  /// always maps a page; levels 2 and 3 do when their page-size bit is set).
  private static func isGuestTable(_ value: UInt64, _ level: Int) -> Bool {
    value & 1 != 0 && level > 1 && !(level <= 3 && value >> 7 & 1 == 1)
  }

  /// Every value the word held in its history, and its current one.
  private func values(_ word: UInt64) -> Set<UInt64> {
    var result: Set<UInt64> = [oracle.model.state.memory[word]]
    for version in oracle.history.versions[word] ?? [] { result.insert(version.value) }
    return result
  }

  /// Every host address a nested walk of `gpa` may give over any values its entries held, by
  /// entry layout (present bits, page-size bit); `gpa` itself without a nested stage.
  private func hostAddresses(_ gpa: UInt64, tables frames: inout Set<UInt64>) -> Set<UInt64> {
    let levels = oracle.model.state.configuration.nestedLevels
    guard levels > 0 else { return [gpa] }
    let mask = EntryMasks.address(bits: oracle.nestedAddressBits)
    let ept: Bool
    if case .ept = oracle.model.state.configuration.nested { ept = true } else { ept = false }
    var tables: Set<UInt64> = [oracle.nestedRoot]
    var result: Set<UInt64> = []
    for level in stride(from: levels, through: 1, by: -1) {
      var next: Set<UInt64> = []
      let shift = UInt64(12 + 9 * (level - 1))
      let size: UInt64 = 1 << shift
      for table in tables {
        frames.insert(table >> 12)
        for value in values(table | (gpa >> shift & 0x1FF) << 3)
        where value & (ept ? 7 : 1) != 0 {
          if level == 1 || level <= 3 && value >> 7 & 1 == 1 {
            result.insert(value & mask & ~(size - 1) | gpa & (size - 1))
          } else {
            next.insert(value & mask)
          }
        }
      }
      tables = next
    }
    return result
  }

  /// The window of epochs in which the next read of a chain may happen (§6.1: the level above
  /// survives in its paging-structure cache until then).
  private func window(_ chain: Chain, log: InvalidationLog, address: UInt64, context: CacheContext)
    -> Epochs?
  {
    guard let feasible = chain.feasible else { return chain.top }
    if feasible.isInterval {
      let read = feasible.hull
      let kill = log.nextKill(
        after: read.upperBound, .pagingStructure(level: chain.level), address: address,
        context: context)
      let upper = kill == Int.max ? Int.max : kill - 1
      return read.lowerBound <= upper ? Epochs(read.lowerBound...upper) : nil
    }
    var windows = Epochs.Builder()
    for index in 0..<feasible.count {
      let read = feasible[index]
      let kill = log.nextKill(
        after: read.upperBound, .pagingStructure(level: chain.level), address: address,
        context: context)
      let upper = kill == Int.max ? Int.max : kill - 1
      if read.lowerBound <= upper { windows.append(read.lowerBound...upper) }
    }
    return windows.epochs
  }

  /// Whether the chain's last read may be used at some epoch of `use`: read then, or (when
  /// `cached`) read earlier and kept by the TLB (or guest-physical TLB) until then.
  private func reaches(
    _ chain: Chain, _ use: ClosedRange<Int>, cached: Bool, global: Bool, log: InvalidationLog,
    address: UInt64, context: CacheContext
  ) -> Bool {
    guard let feasible = chain.feasible else { return chain.top.overlaps(use) }
    if feasible.overlaps(use) { return true }
    guard cached else { return false }
    if feasible.isInterval {
      let read = feasible.hull
      guard read.upperBound < use.lowerBound else { return false }
      let kill = log.nextKill(
        after: read.upperBound, .translation(leafLevel: chain.level, global: global),
        address: address, context: context)
      return kill > max(use.lowerBound, read.upperBound + 1)
    }
    for index in 0..<feasible.count where feasible[index].upperBound < use.lowerBound {
      let read = feasible[index]
      let kill = log.nextKill(
        after: read.upperBound, .translation(leafLevel: chain.level, global: global),
        address: address, context: context)
      if kill > max(use.lowerBound, read.upperBound + 1) { return true }
    }
    return false
  }

  /// Whether a chain whose read at `level`, at some of `epochs`, sees an entry of `role` can
  /// still end as §6.1 and §6.2 require: an entry that stops the walk is read now; a leaf is read
  /// when its translation is used or kept cached until then (the guest's now, a nested walk's
  /// from its ``NestedWalk/useFrom`` on); a table leaves the rest to the reads below it. A
  /// necessary condition of ``endsNow(_:guest:guestFeasible:nested:lastNestedKey:linearContext:physicalContext:leafValue:)``,
  /// checked before a candidate is walked so that one that cannot end is never walked.
  private func canEnd(
    _ role: EntryRole, level: Int, epochs: Epochs, value: UInt64, nested walk: NestedWalk?
  ) -> Bool {
    switch role {
    case .stops:
      return epochs.contains(now)
    case .table:
      return true
    case .leaf:
      let chain = Chain(top: epochs, level: level, feasible: epochs)
      guard let walk else {
        let global =
          value >> 8 & 1 == 1 && oracle.registers.cr4 & ControlBits.globalPages != 0
        return reaches(
          chain, now...now, cached: true, global: global, log: linearLog, address: address,
          context: oracle.linearContext)
      }
      guard walk.useFrom <= now else { return false }
      return reaches(
        chain, walk.useFrom...now, cached: true, global: false, log: physicalLog,
        address: walk.gpa, context: oracle.physicalContext)
    }
  }

  private mutating func visit(_ candidate: Candidate) {
    if changeable == nil && runs >= Self.saturationCheckRuns { checkSaturation() }
    if saturated { return }
    guard runs < walkLimit else {
      limitReached = true
      return
    }
    runs += 1
    oracle.statistics.walks += 1

    // Overlay the guest walk's chosen values on memory; give each nested walk whose chosen
    // values differ from that a view of its own; walk; undo.
    var saved: [(word: UInt64, value: UInt64)] = []
    for (word, option) in candidate.pins.entries {
      let value = oracle.model.state.memory[word]
      if value != option.value {
        saved.append((word, value))
        oracle.model.state.memory[word] = option.value
      }
    }
    var views: [UInt64: FrameMemory] = [:]
    var patches: [UInt64: [(word: UInt64, value: UInt64)]] = [:]
    for (gpa, pins) in candidate.nestedPins.entries
    where pins.entries.contains(where: { oracle.model.state.memory[$0.word] != $0.option.value }) {
      // A view is memory as the guest walk sees it, with this nested walk's choices on top:
      // a spare copy of the unpinned memory, patched here and unpatched after the walk.
      var view = spareView(unpinning: saved)
      var undo: [(word: UInt64, value: UInt64)] = []
      for (word, option) in candidate.pins.entries {
        undo.append((word, view[word]))
        view[word] = option.value
      }
      for (word, option) in pins.entries {
        undo.append((word, view[word]))
        view[word] = option.value
      }
      views[gpa] = view
      patches[gpa] = undo
    }
    // A guest level that reads a word again with another value than the one chosen for it
    // reads a view of its own: memory as the walk sees it, with that value on top.
    var guestViews: [Int: FrameMemory] = [:]
    var guestPatches: [Int: [(word: UInt64, value: UInt64)]] = [:]
    for (word, level, option) in candidate.pins.again
    where oracle.model.state.memory[word] != option.value {
      var view: FrameMemory
      var undo: [(word: UInt64, value: UInt64)]
      if let existing = guestViews.removeValue(forKey: level) {
        view = existing
        undo = guestPatches[level] ?? []
      } else {
        view = spareView(unpinning: saved)
        undo = []
        for (pinned, chosen) in candidate.pins.entries {
          undo.append((pinned, view[pinned]))
          view[pinned] = chosen.value
        }
      }
      undo.append((word, view[word]))
      view[word] = option.value
      guestViews[level] = view
      guestPatches[level] = undo
    }
    oracle.model.state.guest.root = candidate.root
    let walk =
      views.isEmpty && guestViews.isEmpty && candidate.readsAsReadsFrom == nil
      ? oracle.model.translate(address, access, choices: oracle.walkChoices, recording: true)
      : oracle.model.translate(
        address, access, choices: oracle.walkChoices, recording: true, nestedViews: views,
        guestViews: guestViews, readsAsReadsFrom: candidate.readsAsReadsFrom)

    let linearContext = oracle.linearContext
    let physicalContext = oracle.physicalContext
    let guestTop = oracle.guestLevels
    let guestBits = oracle.processor.physicalAddressBits
    var children: [Candidate] = []
    var seen = candidate.pins
    var seenNested = candidate.nestedPins
    var guest = Chain(top: Epochs(candidate.rootEpochs))
    var nested = NestedChains()
    var lastNestedKey: Int? = nil
    var lastGuestValue: UInt64? = nil
    var guestFeasible: [Epochs?] = Array(repeating: nil, count: 6)
    var feasible = true
    let explanationsBefore = explanations.count

    for reference in walk.references {
      // The chain the read belongs to, and the window of epochs it may happen in.
      let key: Int?
      let available: Epochs?
      var gpa: UInt64 = 0
      switch reference.stage {
      case .guest:
        key = nil
        available = window(guest, log: linearLog, address: address, context: linearContext)
      default:
        let walkKey = reference.stage == .nestedFinal ? 0 : reference.guestLevel
        key = walkKey
        if nested[walkKey] == nil {
          let translated: UInt64
          if walkKey == 0 {
            if guestTop > 0, let leaf = lastGuestValue, walk.guestPageSize != 0 {
              let size = walk.guestPageSize
              translated =
                leaf & EntryMasks.address(bits: guestBits) & ~(size - 1) | address & (size - 1)
            } else {
              translated = address
            }
          } else {
            let table =
              walkKey == guestTop
              ? candidate.root : (lastGuestValue ?? 0) & EntryMasks.address(bits: guestBits)
            translated = table | (address >> UInt64(12 + 9 * (walkKey - 1)) & 0x1FF) << 3
          }
          // The translation is used when the guest reads the entry it locates (the leaf, for
          // the final one), no earlier than that read's window allows; nothing read before the
          // last invalidation of everything cached for the address up to then survives to it.
          let useFrom: Int
          if walkKey == 0 {
            useFrom = guestTop > 0 ? guest.feasible?.lowerBound ?? now : now
          } else {
            useFrom =
              window(guest, log: linearLog, address: address, context: linearContext)?
              .lowerBound ?? Int.min
          }
          let bound = physicalLog.lastComplete(
            translated, physicalContext, atOrBefore: useFrom)
          nested[walkKey] = NestedWalk(
            chain: Chain(top: Epochs(min(bound, now)...now)), gpa: translated, useFrom: useFrom)
        }
        lastNestedKey = walkKey
        let entry =
          nested[walkKey]
          ?? NestedWalk(chain: Chain(top: Epochs(Int.min...now)), gpa: 0, useFrom: now)
        gpa = entry.gpa
        available = window(
          entry.chain, log: physicalLog, address: entry.gpa, context: physicalContext)
      }
      guard let available else {
        feasible = false
        break
      }
      // A guest word chosen at another level of this walk is read again: its chosen value
      // goes on by default, and each other value it held is tried for this level too.
      var pinned: Option? = nil
      var readAgain: Option? = nil
      if key != nil {
        pinned = seenNested[gpa]?[reference.address]
      } else if let option = seen[reference.address] {
        if seen.level(of: reference.address) == reference.level {
          pinned = option
        } else if let again = seen.chosenAgain(reference.address, level: reference.level) {
          pinned = again
        } else {
          readAgain = option
        }
      }
      let chosen: Option
      if let pinned {
        chosen = pinned
      } else {
        let overlaid = saved.first { $0.word == reference.address }?.value
        let all = options(
          reference.address, current: overlaid, guest: key == nil,
          nestedMask: oracle.nestedAccessedDirtyMask)
        guard let fallback = readAgain ?? all.first(where: { $0.current }) else {
          feasible = false
          break
        }
        for option in all where option != fallback {
          guard let epochs = available.intersection(option.epochs) else { continue }
          let role =
            key == nil
            ? oracle.model.guestEntryRole(option.value, level: reference.level)
            : oracle.model.nestedEntryRole(option.value, level: reference.level)
          guard
            canEnd(
              role, level: reference.level, epochs: epochs, value: option.value,
              nested: key.flatMap { nested[$0] })
          else { continue }
          var child = candidate
          child.pins = seen
          child.nestedPins = seenNested
          if key != nil {
            child.nestedPins.set(gpa, reference.address, option)
          } else if readAgain != nil {
            child.pins.choose(reference.address, option, again: reference.level)
          } else {
            child.pins.choose(reference.address, option, level: reference.level)
          }
          children.append(child)
        }
        chosen = fallback
        if key != nil {
          seenNested.set(gpa, reference.address, fallback)
        } else if readAgain != nil {
          seen.choose(reference.address, fallback, again: reference.level)
        } else {
          seen.choose(reference.address, fallback, level: reference.level)
        }
      }
      guard let narrowed = available.intersection(chosen.epochs) else {
        feasible = false
        break
      }
      if let key {
        nested[key]?.chain.level = reference.level
        nested[key]?.chain.feasible = narrowed
      } else {
        guest.level = reference.level
        guest.feasible = narrowed
        guestFeasible[reference.level] = narrowed
        lastGuestValue = reference.value
      }
    }

    if feasible {
      feasible = endsNow(
        walk, guest: guest, guestFeasible: guestFeasible, nested: nested,
        lastNestedKey: lastNestedKey, linearContext: linearContext,
        physicalContext: physicalContext, leafValue: lastGuestValue ?? 0)
    }
    if feasible {
      let stale =
        candidate.root != oracle.registers.cr3 & EntryMasks.address(bits: guestBits)
        || seen.anyStale || seenNested.anyStale
      // The entries read as of A/D flags off must each be one read while they were: one not
      // read at all (the walk stopped above it) leaves this candidate to a shorter one.
      let readThen =
        candidate.readsAsReadsFrom.map { from in
          from > guestTop
            || (from...guestTop).allSatisfy { level in
              (guestFeasible[level]?.lowerBound ?? Int.max) <= oracle.accessedDirtyOffEnd
            }
        } ?? true
      if readThen {
        judge(
          walk, seen: seen, views: views, guestViews: guestViews,
          readsAsReadsFrom: candidate.readsAsReadsFrom,
          stale: stale || candidate.readsAsReadsFrom != nil)
      }
    }
    for (word, value) in saved { oracle.model.state.memory[word] = value }
    for (gpa, undo) in patches {
      guard var view = views.removeValue(forKey: gpa) else { continue }
      for (word, value) in undo.reversed() { view[word] = value }
      oracle.views.giveBack(view)
    }
    for (level, undo) in guestPatches {
      guard var view = guestViews.removeValue(forKey: level) else { continue }
      for (word, value) in undo.reversed() { view[word] = value }
      oracle.views.giveBack(view)
    }
    // Judged against memory as it is, not as this walk's overlay shows it: what is already set
    // cannot be changed by any walk, and the overlay may show older values set.
    if explanations.count > explanationsBefore { checkSaturation() }
    // Taken out of the list in order rather than copied out of it: a candidate's pins are
    // moved to the child's visit, not counted once more.
    children.reverse()
    while let child = children.popLast() {
      visit(child)
      if limitReached || saturated { return }
    }
  }

  /// The end conditions of §6.1 and §6.2. A walk that stopped at an entry read that entry
  /// now; a complete guest walk was read now or cached and kept until now. Each nested walk
  /// was read, or cached and kept, until it was used: the translation of a guest table until
  /// that table's entry was read (a combined paging-structure entry keeps the host address of
  /// the next table), the final translation until the leaf was (a combined TLB entry keeps the
  /// host address); a nested walk the access stopped at was read now.
  private func endsNow(
    _ walk: Translation<Concrete>, guest: Chain, guestFeasible: [Epochs?],
    nested: NestedChains, lastNestedKey: Int?,
    linearContext: CacheContext, physicalContext: CacheContext, leafValue: UInt64
  ) -> Bool {
    let rule = walk.decidingRule
    let stage = walk.decidingStage
    let paging = oracle.guestLevels > 0
    let completeGuest = !paging || walk.guestPageSize != 0
    let nowOnly = now...now
    if paging && rule != .nonCanonical {
      if stage == .guest && Self.stopsWalk(rule) {
        guard let feasible = guest.feasible, feasible.contains(now) else { return false }
      } else if completeGuest {
        let global =
          leafValue >> 8 & 1 == 1 && oracle.registers.cr4 & ControlBits.globalPages != 0
        guard
          reaches(
            guest, nowOnly, cached: true, global: global, log: linearLog, address: address,
            context: linearContext)
        else { return false }
      } else {
        // A nested fault on a guest table read: the walk reached that read now.
        guard
          let next = window(guest, log: linearLog, address: address, context: linearContext),
          next.contains(now)
        else { return false }
      }
    }
    let decidingWalk: Int? =
      stage == .nestedFinal ? 0 : (stage == .nestedTable && !completeGuest ? lastNestedKey : nil)
    for (key, entry) in nested.present {
      let stopped = key == decidingWalk && Self.stopsWalk(rule)
      let useLevel = key == 0 ? guest.level : key
      let use: ClosedRange<Int>
      if stopped || !paging || (key == decidingWalk && key != 0) {
        use = nowOnly
      } else if key == 0, key != decidingWalk, completeGuest, let read = guestFeasible[useLevel] {
        // The final translation is made when the guest leaf is read, and a combined TLB
        // entry keeps it from then: at an epoch of the leaf's read from which that entry
        // survives until now — not before the last invalidation that drops it.
        let global =
          leafValue >> 8 & 1 == 1 && oracle.registers.cr4 & ControlBits.globalPages != 0
        let killed = linearLog.lastKill(
          .translation(leafLevel: guest.level, global: global), address: address,
          context: linearContext)
        // (The guest chain's reads are single intervals: guest options are never merged.)
        let low = max(read.lowerBound, killed)
        let high = min(read.upperBound, now)
        guard low <= high else { return false }
        use = low...high
      } else if let read = guestFeasible[useLevel] {
        use = read.lowerBound...now
      } else {
        use = nowOnly
      }
      guard
        reaches(
          entry.chain, use, cached: !stopped, global: false, log: physicalLog,
          address: entry.gpa, context: physicalContext)
      else { return false }
    }
    return true
  }

  /// Evaluates a feasible assignment under the preferred choices and, where the outcome is a
  /// nested fault, under the others that shape nested faults (§8); records what matches.
  ///
  /// Those choices decide only how a walk that reached the nested fault reports it (which of
  /// the A/D write and the final translation faults first, qualification bits): every one of
  /// them gives a nested fault where the preferred one does, and the preferred outcome where it
  /// is not a nested fault. So they can explain only an observed nested fault, and are not
  /// tried for any other unless every outcome is listed.
  private mutating func judge(
    _ walk: Translation<Concrete>, seen: Pins, views: [UInt64: FrameMemory],
    guestViews: [Int: FrameMemory], readsAsReadsFrom: Int?, stale: Bool
  ) {
    consider(walk, seen: seen, stale: stale)
    if walk.outcome != observed && Self.isNestedFault(walk.outcome)
      && (listsEveryOutcome || Self.isNestedFault(observed))
    {
      for choices in Self.nestedFaultChoices(around: oracle.walkChoices) {
        runs += 1
        let other = translate(
          choices, views: views, guestViews: guestViews, readsAsReadsFrom: readsAsReadsFrom)
        consider(other, seen: seen, stale: stale)
      }
    }
  }

  private func translate(
    _ choices: Choices<Concrete>, views: [UInt64: FrameMemory], guestViews: [Int: FrameMemory],
    readsAsReadsFrom: Int?
  ) -> Translation<Concrete> {
    oracle.statistics.walks += 1
    return views.isEmpty && guestViews.isEmpty && readsAsReadsFrom == nil
      ? oracle.model.translate(address, access, choices: choices)
      : oracle.model.translate(
        address, access, choices: choices, recording: false, nestedViews: views,
        guestViews: guestViews, readsAsReadsFrom: readsAsReadsFrom)
  }

  /// Records a walk's outcome, and, when it is the observed one, what the walk writes: for
  /// certain after a translation; possibly after a fault (its upper-level A bits are IMPL,
  /// §1.8, and the walk was run with ``Oracle/walkChoices`` to show them).
  private mutating func consider(_ walk: Translation<Concrete>, seen: Pins, stale: Bool) {
    let outcome = walk.outcome
    if !outcomes.contains(outcome) { outcomes.append(outcome) }
    guard outcome == observed else { return }
    var explanation = Explanation(stale: stale)
    if outcome.isFault {
      Self.collect(
        walk.performedUpdates, seen: seen, into: &explanation.possible,
        nested: &explanation.nested)
    } else {
      Self.collect(
        walk.performedUpdates, seen: seen, into: &explanation.certain,
        nested: &explanation.nested)
    }
    explanations.append(explanation)
    note(explanation)
  }

  /// Folds an explanation into what the ones found so far write (``visit(_:)`` then decides
  /// ``saturated``, once memory is back to its own values).
  private mutating func note(_ explanation: Explanation) {
    for (word, bits) in explanation.certain { anyWrites[word, default: 0] |= bits }
    for (word, bits) in explanation.possible { anyWrites[word, default: 0] |= bits }
    // After a fault nothing is certain (Oracle/apply): only what may be written counts.
    if !observed.isFault {
      if let common = commonWrites {
        var narrowed: [UInt64: UInt64] = [:]
        for (word, bits) in common {
          let both = bits & (explanation.certain[word] ?? 0)
          if both != 0 { narrowed[word] = both }
        }
        commonWrites = narrowed
      } else {
        commonWrites = explanation.certain.filter { $0.value != 0 }
      }
    }
  }

  /// Decides ``saturated`` from the explanations found so far, once the search has run
  /// ``saturationCheckRuns`` walks.
  private mutating func checkSaturation() {
    guard oracle.stopsSaturatedSearches, runs >= Self.saturationCheckRuns, !explanations.isEmpty
    else { return }
    if !observed.isFault && commonWrites?.isEmpty != true { return }
    if changeable == nil {
      var result: [UInt64: UInt64] = [:]
      for (word, bits) in unjudged(nestedTables: &nestedTables) {
        let open = bits & ~oracle.model.state.memory[word] & ~oracle.uncertain[word]
        if open != 0 { result[word] = open }
      }
      changeable = result
    }
    saturated = (changeable ?? [:]).allSatisfy { $0.value & ~(anyWrites[$0.key] ?? 0) == 0 }
  }

  /// The updates that land on the current value of their word (one written over since the
  /// epoch it was read at is lost), guest and nested apart.
  static func collect(
    _ updates: [Update<Concrete>], seen: Pins, into guest: inout [UInt64: UInt64],
    nested: inout [UInt64: UInt64]
  ) {
    for update in updates {
      // A guest entry read at two levels was written through the read of the update's level.
      let read =
        update.stage == .guest
        ? seen.option(update.address, level: update.level) : seen[update.address]
      if let read, !read.current { continue }
      if update.stage == .guest {
        guest[update.address, default: 0] |= update.bits
      } else {
        nested[update.address, default: 0] |= update.bits
      }
    }
  }

  /// Whether the rule stops a walk at an entry (one never cached, §6.1).
  static func stopsWalk(_ rule: Rule) -> Bool {
    switch rule {
    case .notPresent, .reservedBit, .eptNotPresent, .eptWriteWithoutRead,
      .eptExecuteOnlyUnsupported, .eptReservedBit, .eptBadMemoryType:
      true
    default: false
    }
  }

  static func isNestedFault(_ outcome: Outcome) -> Bool {
    switch outcome {
    case .eptViolation, .eptMisconfiguration, .nestedPageFault: true
    default: false
    }
  }

  /// The combinations of the choices that shape nested faults — the order of guest A/D writes
  /// and the final translation, qualification bit 0 on A/D-write violations, the advanced
  /// qualification bits — other than `preferred`'s.
  static func nestedFaultChoices(around preferred: Choices<Concrete>) -> [Choices<Concrete>] {
    var result: [Choices<Concrete>] = []
    for n in 0..<8 {
      var choices = preferred
      choices.accessedDirtyBeforeFinal = n & 1 != 0
      choices.readBitOnAccessedDirtyWrite = n & 2 != 0
      choices.advancedQualification = n & 4 != 0
      if choices.accessedDirtyBeforeFinal == preferred.accessedDirtyBeforeFinal
        && choices.readBitOnAccessedDirtyWrite == preferred.readBitOnAccessedDirtyWrite
        && choices.advancedQualification == preferred.advancedQualification
      {
        continue
      }
      result.append(choices)
    }
    return result
  }
}

extension Outcome {
  /// Whether the access did not complete.
  var isFault: Bool {
    if case .translated = self { return false }
    return true
  }
}
