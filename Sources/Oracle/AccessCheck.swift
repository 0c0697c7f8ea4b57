/// Judging one access (docs/fuzzing.md, "how the oracle decides"): the cheapest explanation
/// first — the fresh walk under the preferred choices, accepted at once when no entry it read
/// could have been seen with another value (nothing it read changed since the last
/// invalidation that dropped everything for the address) — then the search of
/// ``ExplanationSearch``. Whatever explains the observation, the oracle then applies the
/// accessed/dirty writes every explanation makes, marks those only some make as uncertain, and
/// records the invalidations the outcome causes (§6.1: a fault invalidates).
import Foundation
import Machine
import ReferenceModel

let debugOracle = ProcessInfo.processInfo.environment["NESTCHECK_DEBUG"] != nil

extension Oracle {
  func checkAccess(
    _ operation: TraceOperation, _ address: UInt64, _ access: Access,
    _ observed: TraceObservation
  ) -> Judgement {
    statistics.accesses += 1
    statistics.walks += 1
    let fresh = model.translate(address, access, choices: walkChoices, recording: true)
    guard case .outcome(let outcome) = observed.result else {
      return .diverges(
        Divergence(
          operation: operation, observed: observed, allowed: [.outcome(fresh.outcome)],
          reason: "an access reports an outcome"))
    }
    if fresh.outcome == outcome && isSettled(fresh, address) {
      statistics.freshAccesses += 1
      acceptFresh(fresh, address, access)
      faulted(address, outcome)
      return .agrees
    }
    if fresh.outcome == outcome && searchDecidesNothing(outcome, access) {
      statistics.freshAccesses += 1
      markAccessedBitsUncertain(address, access, outcome)
      acceptFresh(fresh, address, access)
      faulted(address, outcome)
      return .agrees
    }
    statistics.searchedAccesses += 1
    var search = ExplanationSearch(
      oracle: self, address: address, access: access, observed: outcome,
      freshGivesIt: fresh.outcome == outcome)
    search.run()
    if debugOracle {
      print("DEBUG access \(hex(address)) \(access): observed \(outcome); fresh \(fresh.outcome)")
      for e in search.explanations {
        print(
          "  explanation stale=\(e.stale) certain=\(e.certain.map { (hex($0.key), hex($0.value)) }) possible=\(e.possible.map { (hex($0.key), hex($0.value)) })"
        )
      }
    }
    if search.explained && !search.limitReached {
      if !search.explanations.contains(where: { !$0.stale }) { statistics.staleAccesses += 1 }
      // Walks a saturated search did not run may have set nested A/D bits in these tables.
      if search.saturated { nestedFrames.formUnion(search.nestedTables) }
      apply(search.explanations, fault: outcome.isFault)
      faulted(address, outcome)
      return .agrees
    }
    if search.limitReached {
      if search.explained && fresh.outcome == outcome && outcome.isFault {
        statistics.explainedFaultSearchesCut += 1
      } else {
        statistics.searchLimitReached += 1
      }
      var unsure = ExplanationSearch.Explanation()
      var nested: [UInt64: UInt64] = [:]
      ExplanationSearch.collect(
        fresh.performedUpdates, seen: ExplanationSearch.Pins(), into: &unsure.possible,
        nested: &nested)
      unsure.nested = nested
      // The search gave up before judging every assignment, so what the walk that happened
      // wrote is not known: it may be one the search did not run (a translated write through
      // stale nested entries still sets the guest leaf's A and D, which the faulting fresh walk
      // does not, §1.8, §6.1), and the explanations found so far are not all there are (one
      // reading a cached entry older than those tried may write no A/D bit). Every A/D bit any
      // walk of the address giving the observed outcome could write is possible.
      var tables: Set<UInt64> = []
      for (word, bits) in search.unjudged(nestedTables: &tables) {
        unsure.possible[word, default: 0] |= bits
      }
      nestedFrames.formUnion(tables)
      for explanation in search.explanations {
        for (word, bits) in explanation.certain { unsure.possible[word, default: 0] |= bits }
        for (word, bits) in explanation.possible { unsure.possible[word, default: 0] |= bits }
        for (word, bits) in explanation.nested { unsure.nested[word, default: 0] |= bits }
      }
      apply([unsure], fault: true)
      faulted(address, outcome)
      return .agrees
    }
    // The report lists every outcome the walks give, under every choice that shapes a nested
    // fault: a search that lists them all.
    var listing = ExplanationSearch(
      oracle: self, address: address, access: access, observed: outcome, listsEveryOutcome: true)
    listing.run()
    var allowed: [TraceResult] = [.outcome(fresh.outcome)]
    for other in listing.outcomes where other != fresh.outcome { allowed.append(.outcome(other)) }
    let reason =
      listing.outcomes.count > 1
      ? "no walk over the values the entries held since their last invalidation gives it"
      : "the walk gives another outcome, and no entry it reads can be stale"
    return .diverges(
      Divergence(operation: operation, observed: observed, allowed: allowed, reason: reason))
  }

  /// Whether no entry the fresh walk read could have been read with another value: nothing on
  /// its path changed, for the dimension that read it, since everything cached for the address
  /// was last dropped (an A/D update is a change only for the dimension whose format gives the
  /// bits a meaning, ``MemoryHistory``), and the root did not change in the current context
  /// since, and — where a guest A/D write can fault — no A/D bit a guest read sees is uncertain.
  /// (Where it cannot, uncertain A/D bits do not matter to a guest read: the walk reads them
  /// clear, and what it writes settles them either way, as the search would,
  /// ``ExplanationSearch``.) A nested read of a word with uncertain guest bits always matters:
  /// under EPT they are memory-type or reserved bits, and the search branches on them.
  func isSettled(_ walk: Translation<Concrete>, _ address: UInt64) -> Bool {
    let guestBound = max(
      linear.lastComplete(address, linearContext), (contextFirstSeen[linearContext] ?? 0) - 1)
    let physicalBound = max(
      physical.lastComplete(physicalContext),
      (physicalFirstSeen[physicalContext] ?? 0) - 1)
    if guestLevels > 0 && rootStableSince > guestBound { return false }
    let uncertainMatters = !accessedDirtyWritesCannotFault && !uncertain.isEmpty
    if latestGuestChange <= guestBound && latestNestedChange <= physicalBound
      && uncertain.isEmpty
    {
      return true
    }
    for reference in walk.references {
      if reference.stage == .guest {
        if history.lastChange(reference.address, for: .guest) > guestBound { return false }
        if uncertainMatters && uncertain[reference.address] != 0 { return false }
      } else {
        if history.lastChange(reference.address, for: .nested) > physicalBound { return false }
        // A nested read branches on a word's uncertain guest A/D bits (``ExplanationSearch``).
        if uncertain[reference.address] & ~nestedAccessedDirtyMask != 0 { return false }
      }
    }
    return true
  }

  /// Whether, once the fresh walk gives `outcome`, no other explanation could change what the
  /// oracle records, so the search need not run (most searches of a shadow campaign are
  /// these). That holds under a hypervisor that leaves the guest-physical map's A/D bits alone
  /// (shadow, paravirtual), where a guest A/D write cannot fault, for a fault no walk ends in
  /// after writing a D bit: a guest #PF (§1.8: a faulting walk writes no D), a nested fault on
  /// a guest-table read (the guest walk stopped above its leaf), or any fault of an access
  /// that is not a write. Every other guest write such a walk makes is an A bit it may or may
  /// not make: an A bit the oracle leaves clear is allowed set (the memory comparison accepts
  /// any A the target set, §6.1), no guest read here depends on uncertain A/D bits
  /// (``isSettled(_:_:)``, ``ExplanationSearch``), and nested A/D bits are never compared in
  /// these modes. Only an EPT-format map reads a guest A bit as something else (memory type):
  /// there ``markAccessedBitsUncertain(_:_:_:)`` records every A bit such a walk could write.
  func searchDecidesNothing(_ outcome: Outcome, _ access: Access) -> Bool {
    guard mode != .nested, accessedDirtyWritesCannotFault else { return false }
    switch outcome {
    case .pageFault:
      return true
    case .nestedPageFault(let info, _):
      // EXITINFO1 bit 33: the fault was on a guest-table read (SEMANTICS §3.3).
      return info & 1 << 33 != 0 || access.kind != .write
    case .eptViolation(let qualification, _, _):
      // Qualification bit 7 set and bit 8 clear: on a guest-table access (SEMANTICS §2.6).
      return qualification & 0x180 == 0x80 || access.kind != .write
    case .eptMisconfiguration:
      return access.kind != .write
    case .translated, .generalProtection:
      return false
    }
  }

  /// Under an EPT-format map, marks uncertain the A bit of every guest entry a walk of
  /// `address` could read (``ExplanationSearch/unjudged()``, A bits only) that memory does not
  /// hold set: what the search not run could have found written.
  func markAccessedBitsUncertain(_ address: UInt64, _ access: Access, _ outcome: Outcome) {
    guard case .ept = model.state.nested else { return }
    let search = ExplanationSearch(
      oracle: self, address: address, access: access, observed: outcome)
    for (word, bits) in search.unjudged() {
      let open = bits & ExplanationSearch.accessedBit & ~model.state.memory[word]
      if open != 0 { uncertain.add(word, open) }
    }
  }

  /// The fresh walk explains the observation alone — unless it faulted: then a walk writing
  /// guest A/D before a final nested translation that faults (§4.1) explains it too, and what
  /// either writes, the upper-level A bits of §1.8 included (``walkChoices``), is uncertain.
  private func acceptFresh(_ walk: Translation<Concrete>, _ address: UInt64, _ access: Access) {
    var primary = ExplanationSearch.Explanation()
    ExplanationSearch.collect(
      walk.performedUpdates, seen: ExplanationSearch.Pins(), into: &primary.certain,
      nested: &primary.nested)
    guard walk.outcome.isFault, guestLevels > 0 else {
      apply([primary], fault: walk.outcome.isFault)
      return
    }
    var explanations = [primary]
    var reordered = walkChoices
    reordered.accessedDirtyBeforeFinal.toggle()
    for choices in [reordered] {
      statistics.walks += 1
      let other = model.translate(address, access, choices: choices)
      guard other.outcome == walk.outcome else { continue }
      var explanation = ExplanationSearch.Explanation()
      ExplanationSearch.collect(
        other.performedUpdates, seen: ExplanationSearch.Pins(), into: &explanation.certain,
        nested: &explanation.nested)
      explanations.append(explanation)
    }
    apply(explanations, fault: true)
  }

  /// Applies what a set of explanations writes: the A/D bits all of them write, as known; those
  /// only some write, as uncertain; nested A/D bits (which no outcome depends on) as written.
  /// After a fault every guest A/D write is uncertain: the A bits of a faulting walk are IMPL
  /// (§1.8), and so is whether its A/D writes precede the final translation (§4.1).
  func apply(_ explanations: [ExplanationSearch.Explanation], fault: Bool) {
    guard let first = explanations.first else { return }
    var certain = fault ? [:] : first.certain
    var possible: [UInt64: UInt64] = first.possible
    var nestedBits: [UInt64: UInt64] = [:]
    for explanation in explanations {
      for (word, bits) in explanation.certain { possible[word, default: 0] |= bits }
      for (word, bits) in explanation.possible { possible[word, default: 0] |= bits }
      for (word, bits) in explanation.nested { nestedBits[word, default: 0] |= bits }
      certain = certain.reduce(into: [:]) { result, item in
        result[item.key] = item.value & (explanation.certain[item.key] ?? 0)
      }
    }
    for (word, bits) in certain where bits != 0 {
      setAccessedDirty(word, guest: bits, nested: nestedBits[word] ?? 0)
      uncertain.settle(word, bits)
    }
    for (word, bits) in possible {
      let unknown = bits & ~(certain[word] ?? 0) & ~model.state.memory[word]
      uncertain.add(word, unknown)
    }
    for (word, bits) in nestedBits {
      setAccessedDirty(word, guest: 0, nested: bits)
      nestedFrames.insert(word >> 12)
    }
  }
}
