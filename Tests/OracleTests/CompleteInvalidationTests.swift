import Machine
import Oracle
import ReferenceModel
import Testing

/// An invalidation that drops everything cached for an address bounds every explanation after
/// it (SEMANTICS §6.1, §6.2; docs/fuzzing.md, "how the oracle decides"): a walk that ends after
/// it reads nothing from before it — neither a guest entry nor, for the guest reads after it, a
/// guest-physical translation that an invalidation of that address dropped before them — and the
/// search never walks a value that could only have been read before it.
@Suite struct CompleteInvalidationTests {
  /// The scenario's address with CR4.PGE clear (a #PF or EPT violation then drops everything
  /// cached for it: no global entry can exist), its walk, and the EPT leaf that maps the guest
  /// page table holding its PTE.
  static func scenario() throws -> (JudgementScenario, MemoryReference<Concrete>) {
    let s = try JudgementScenario { $0.cr4 &= ~(1 << 7) }
    let walk = try ConcreteModel(s.state).translate(s.address, Access(.read), recording: true)
    let tableLeaf = try #require(
      walk.references.last { $0.stage == .nestedTable && $0.guestLevel == 1 })
    return (s, tableLeaf)
  }

  @Test func aGuestPhysicalTranslationDroppedByAnEPTViolationIsNotUsedByTheWalksAfterIt() throws {
    let (s, tableLeaf) = try Self.scenario()
    #expect(s.read(observing: s.original).agrees, "everything on the path gets cached")
    // The page table's EPT leaf goes away: the read is an EPT violation on the paging entry,
    // which drops the guest-physical mappings of that page and the combined ones of the address.
    s.perform(.writeHost(hostPhysical: tableLeaf.address, value: 0))
    let violation = try s.fresh()
    guard case .eptViolation = violation else {
      Issue.record("expected an EPT violation, the fresh walk gives \(violation)")
      return
    }
    #expect(s.read(observing: violation).agrees)
    // The leaf comes back naming another frame. Every walk of the address from here on reads
    // its guest entries after the violation, so the page table's translation is read after it
    // too: the old frame, dropped by the violation, is not seen again.
    s.perform(.writeHost(hostPhysical: tableLeaf.address, value: tableLeaf.value ^ 1 << 12))
    let remapped = try s.fresh()
    try #require(remapped != s.original)
    #expect(!s.read(observing: s.original).agrees, "the old page-table frame was dropped")
    #expect(s.read(observing: remapped).agrees)
  }

  @Test func aStaleGuestPhysicalTranslationOfAPageTableSurvivesINVLPG() throws {
    // The counterpart: INVLPG drops linear and combined mappings only (§6.2), so a walk after it
    // may still use the page table's old guest-physical translation.
    let (s, tableLeaf) = try Self.scenario()
    #expect(s.read(observing: s.original).agrees)
    s.perform(.writeHost(hostPhysical: tableLeaf.address, value: tableLeaf.value ^ 1 << 12))
    let remapped = try s.fresh()
    try #require(remapped != s.original)
    #expect(s.perform(.invlpg(linearAddress: s.address)).agrees)
    #expect(s.read(observing: s.original).agrees, "the guest-physical mapping may remain")
    #expect(s.read(observing: remapped).agrees)
  }

  @Test func valuesHeldOnlyBeforeAnINVLPGAreNotWalked() throws {
    // The guest leaf is rewritten many times, then INVLPG drops everything cached for the
    // address: the search after it has no old value of the leaf to try.
    let s = try JudgementScenario { $0.cr4 &= ~(1 << 7) }
    #expect(s.read(observing: s.original).agrees)
    for frame in UInt64(1)...16 {
      s.perform(
        .writeHost(hostPhysical: s.guestLeaf.address, value: s.guestLeaf.value ^ frame << 12))
    }
    s.perform(.writeHost(hostPhysical: s.guestLeaf.address, value: s.guestLeaf.value))
    #expect(s.perform(.invlpg(linearAddress: s.address)).agrees)
    let walksBefore = s.oracle.statistics.walks
    #expect(s.read(observing: s.original).agrees)
    #expect(
      s.oracle.statistics.walks - walksBefore <= 2,
      "the fresh walk, and at most the one with every entry at its current value")
  }
}
