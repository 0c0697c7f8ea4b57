import Machine
import Testing
import Workloads

@testable import FastMMU

/// The occupancy the TLB and the paging-structure caches keep so that invalidations visit only
/// the entries that exist (``SlotSet``): after slots are reused, overwritten with entries of
/// another page size, flushed or recycled, an invalidation still drops exactly the entries it
/// names and no other.
@Suite struct CacheBookkeepingTests {
  /// A successful walk's record, as a TLB fill reads it.
  static func path(_ scratch: WalkScratch, leaf: Int, global: Bool = false) -> WalkPath {
    var path = scratch.path
    path.leaf = leaf
    path.pageLevel = leaf
    path.rights = 63
    path.dirty = true
    path.global = global
    return path
  }

  /// The slots of `tlb` that hold an entry, read from the entries themselves.
  static func heldSlots(_ tlb: TranslationBuffer) -> [Int] {
    (0..<tlb.capacity).filter { !tlb.entries[$0].isEmpty }
  }

  @Test func anInvalidationAfterSlotsWereReusedDropsExactlyTheMatchingEntries() {
    let scratch = WalkScratch()
    let tlb = TranslationBuffer(capacity: 64)
    let small = Self.path(scratch, leaf: 1)
    for page in UInt64(0)..<64 {
      tlb.insert(page << 12, hostPhysical: page << 12, small, context: 1)
    }
    // Slots 0..<32 are reused by pages 64..<96 of context 2.
    for page in UInt64(64)..<96 {
      tlb.insert(page << 12, hostPhysical: page << 12, small, context: 2)
    }
    tlb.invalidateAll { $0.context == 1 }
    #expect(Self.heldSlots(tlb) == Array(0..<32))
    #expect(tlb.count == 32)
    for slot in 0..<32 {
      #expect(tlb.entries[slot].context == 2 && tlb.entries[slot].page == UInt64(64 + slot))
    }
    tlb.invalidateAll { $0.context == 2 && $0.page % 2 == 0 }
    #expect(Self.heldSlots(tlb) == Array(stride(from: 1, to: 32, by: 2)))
    #expect(tlb.count == 16)
  }

  @Test func anAddressInvalidationDropsEveryPieceOfItsLargePageAndNoOtherEntry() {
    let scratch = WalkScratch()
    let tlb = TranslationBuffer(capacity: 1024)
    let large = Self.path(scratch, leaf: 2)
    let small = Self.path(scratch, leaf: 1)
    let page: UInt64 = 0x20_0000  // a 2-MiB page: pieces in slots 0x200 + offset
    for offset in UInt64(0)..<8 {
      tlb.insert(page + offset << 12, hostPhysical: offset << 12, large, context: 1)
    }
    // Another 2-MiB page's piece, a piece of this page in another context, and small pages.
    tlb.insert(0x40_0000 + 0x10_000, hostPhysical: 0, large, context: 1)
    tlb.insert(page + 0x20_000, hostPhysical: 0, large, context: 2)
    tlb.insert(0x1000, hostPhysical: 0, small, context: 1)
    tlb.insert(page + 0x30_000 + 0x800_0000, hostPhysical: 0, small, context: 1)
    let before = Self.heldSlots(tlb)
    tlb.invalidate(address: page + 0x5_000) { $0.context == 1 }
    let dropped = Set(before).subtracting(Self.heldSlots(tlb))
    #expect(dropped == Set((0..<8).map { 0x200 + $0 }))
    #expect(tlb.count == before.count - 8)
    #expect(tlb.largePieces.count == 2)
  }

  @Test func aLargePieceOverwrittenByASmallOneIsNoLongerALargePiece() {
    let scratch = WalkScratch()
    let tlb = TranslationBuffer(capacity: 1024)
    // Slot 0x205: first a piece of the 2-MiB page at 2 MiB, then the 4-KiB page 0x605.
    tlb.insert(0x20_5000, hostPhysical: 0x5000, Self.path(scratch, leaf: 2), context: 1)
    #expect(tlb.largePieces.count == 1)
    tlb.insert(0x60_5000, hostPhysical: 0x9000, Self.path(scratch, leaf: 1), context: 1)
    #expect(tlb.largePieces.isEmpty)
    tlb.invalidate(address: 0x20_0000) { _ in true }
    #expect(tlb.entries[0x205].page == 0x605)
    #expect(tlb.count == 1)
  }

  @Test func aSmallEntryOverwrittenByALargePieceIsReachedThroughItsLargePage() {
    let scratch = WalkScratch()
    let tlb = TranslationBuffer(capacity: 1024)
    tlb.insert(0x60_5000, hostPhysical: 0x9000, Self.path(scratch, leaf: 1), context: 1)
    tlb.insert(0x20_5000, hostPhysical: 0x5000, Self.path(scratch, leaf: 2), context: 1)
    // An address of the same 2-MiB page, in another slot, reaches the piece.
    tlb.invalidate(address: 0x20_0000) { _ in true }
    #expect(tlb.count == 0)
    #expect(Self.heldSlots(tlb).isEmpty)
  }

  @Test func aFlushLeavesNoEntryAndLaterFillsAreStillFound() {
    let scratch = WalkScratch()
    let tlb = TranslationBuffer(capacity: 256)
    for page in UInt64(0)..<300 {
      tlb.insert(
        page << 12, hostPhysical: 0, Self.path(scratch, leaf: 1 + Int(page % 2)), context: 3)
    }
    tlb.flush()
    #expect(tlb.count == 0 && tlb.largePieces.isEmpty)
    #expect(Self.heldSlots(tlb).isEmpty)
    tlb.insert(0x20_1000, hostPhysical: 0, Self.path(scratch, leaf: 2), context: 3)
    tlb.insert(0x7000, hostPhysical: 0, Self.path(scratch, leaf: 1), context: 3)
    tlb.invalidate(address: 0x3F_F000) { _ in true }
    #expect(Self.heldSlots(tlb) == [7])
    tlb.invalidateAll { _ in true }
    #expect(tlb.count == 0)
  }

  @Test func aStructureCacheInvalidationAfterSlotsWereReusedDropsExactlyTheMatchingEntries() {
    let cache = PagingStructureCache(entriesPerLevel: 16)
    let handle = cache.handle
    // Level-2 entries: the tag is address >> 21, the slot its low 4 bits.
    func address(_ region: UInt64) -> UInt64 { region << 21 }
    for region in UInt64(0)..<16 {
      handle.insert(address(region), level: 2, context: 1, table: region << 12, rights: 7)
    }
    cache.invalidate(address: address(3)) { $0 == 1 }
    #expect(handle.lookup(address(3), level: 2, context: 1) == nil)
    #expect(cache.count == 15)
    // Regions 16..<24 reuse slots 0..<8 in context 2; a level-3 entry in context 1.
    for region in UInt64(16)..<24 {
      handle.insert(address(region), level: 2, context: 2, table: region << 12, rights: 7)
    }
    handle.insert(1 << 30, level: 3, context: 1, table: 0x9000, rights: 7)
    cache.invalidate { $0 == 1 }
    #expect(cache.count == 8)
    for region in UInt64(16)..<24 {
      #expect(handle.lookup(address(region), level: 2, context: 2)?.table == region << 12)
    }
    for region in UInt64(8)..<16 {
      #expect(handle.lookup(address(region), level: 2, context: 1) == nil)
    }
    cache.flush()
    #expect(cache.count == 0)
    #expect(handle.lookup(address(16), level: 2, context: 2) == nil)
  }

  @Test func aSlotSetVisitsExactlyItsMembersAcrossSummaryWords() {
    let set = SlotSet.allocate(slots: 10_000)
    defer { set.deallocate() }
    var expected = Set<Int>()
    var random = SeededGenerator(seed: 7)
    for _ in 0..<600 {
      let slot = Int.random(in: 0..<10_000, using: &random)
      set.insert(slot)
      expected.insert(slot)
    }
    for slot in expected.filter({ $0 % 3 == 0 }) {
      set.remove(slot)
      expected.remove(slot)
    }
    set.remove(9_999)  // removing a non-member changes nothing
    expected.remove(9_999)
    var visited: [Int] = []
    set.forEach { slot in
      visited.append(slot)
      if slot % 2 == 0 { set.remove(slot) }  // removal of the slot being visited
    }
    #expect(visited == expected.sorted())
    #expect(set.count == expected.filter { $0 % 2 != 0 }.count)
    #expect(expected.allSatisfy { set.contains($0) == ($0 % 2 != 0) })
    set.removeAll()
    #expect(set.isEmpty && set.count == 0)
    var none = 0
    set.forEach { _ in none += 1 }
    #expect(none == 0)
  }
}
