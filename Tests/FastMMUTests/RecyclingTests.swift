import Machine
import Testing
import Workloads

@testable import FastMMU

/// What an MMU leaves for the next (``Recycler``): a part taken again holds nothing of its last
/// owner.
@Suite struct RecyclingTests {
  /// A snapshot memory with words in `frames` (the low word of each page, and one more).
  static func memory(_ frames: [UInt64], value: UInt64) -> PhysicalMemory {
    var memory = PhysicalMemory()
    for frame in frames {
      memory[frame << 12] = value | frame
      memory[frame << 12 | 0xFF8] = value
    }
    return memory
  }

  @Test func anEmptiedMemoryReadsZeroEverywhereAndHoldsOnlyWhatIsWrittenNext() {
    // Frames inside the first table, beyond it (the table grows), and outside the window.
    let first = Self.memory([1, 2, 0x3000, 0x10_0000, 1 << 27], value: 0xAA00_0000)
    let memory = HostMemory(first)
    memory.discard(frame: 2)
    #expect(memory.snapshot.populatedFrames == [1, 0x3000, 0x10_0000, 1 << 27])
    #expect(memory.isRecyclable)
    memory.empty()
    for address in first.words.keys { #expect(memory.read(address) == 0) }
    #expect(memory.populatedFrames.isEmpty)
    memory.rebase(0)
    let second = Self.memory([3, 0x10_0001], value: 0xBB00_0000)
    for (address, value) in second.words { memory.write(address, value) }
    #expect(memory.snapshot == second)
    for address in first.words.keys { #expect(memory.read(address) == 0) }
  }

  @Test func aMemoryLargerThanOneSlabIsNotKept() {
    let memory = HostMemory(Self.memory((0..<600).map { UInt64($0) }, value: 1 << 40))
    #expect(!memory.isRecyclable)
  }

  @Test func aResetTLBHoldsNothingAndForgetsItsControls() {
    let scratch = WalkScratch()
    let tlb = TranslationBuffer(capacity: 64)
    tlb.setContext(5)
    tlb.allow.update(repeating: .max, count: AccessClass.count)
    tlb.insert(
      0x3000, hostPhysical: 0x7000, CacheBookkeepingTests.path(scratch, leaf: 1), context: 5)
    #expect(tlb.lookup(0x3000, Access(.read)) == 0x7000)
    tlb.reset()
    #expect(tlb.count == 0 && CacheBookkeepingTests.heldSlots(tlb).isEmpty)
    #expect(tlb.control.pointee.contextKey == 0 && tlb.allow[0] == 0)
    tlb.setContext(5)
    tlb.allow.update(repeating: .max, count: AccessClass.count)
    #expect(tlb.lookup(0x3000, Access(.read)) == nil)
  }

  @Test func aRecycledMMUStartsWithNothingCached() throws {
    // The same linear page on two machines, mapped to different frames.
    var first = Scenario(.ept)
    first.map(Layout.data, to: Layout.dataFrame)
    var second = Scenario(.ept)
    second.map(Layout.data, to: Layout.otherFrame)
    for _ in 0..<3 {
      let mmu = try NestedMMU(first.state)
      #expect(mmu.access(Layout.data) == .translated(hostPhysical: first.host(Layout.dataFrame)))
      #expect(mmu.tlb.count == 1)
    }
    let counts = Recycler.shared.counts
    #expect(counts.buffers > 0 && counts.caches > 0 && counts.memories > 0)
    let mmu = try NestedMMU(second.state)
    #expect(mmu.tlb.count == 0)
    #expect(mmu.guestCache?.count == 0 && mmu.nestedCache?.count == 0)
    #expect(mmu.snapshot().memory == second.state.memory)
    #expect(mmu.access(Layout.data) == .translated(hostPhysical: second.host(Layout.otherFrame)))
  }

  @Test func aRecycledShadowMMUStartsWithNoShadowTables() throws {
    var first = Scenario(.ept)
    first.map(Layout.data, to: Layout.dataFrame)
    var second = Scenario(.ept)
    second.map(Layout.code, to: Layout.otherFrame)
    for _ in 0..<3 {
      let mmu = try ShadowMMU(first.state)
      _ = mmu.access(Layout.data)
      #expect(mmu.shadowPageCount > 0)
    }
    let mmu = try ShadowMMU(second.state)
    #expect(mmu.tlb.count == 0)
    #expect(mmu.memory.snapshot == second.state.memory)
    // Nothing of the first machine's shadow tables: the same as another MMU's over the state.
    let other = try ShadowMMU(second.state)
    #expect(mmu.snapshot() == other.snapshot())
    #expect(mmu.shadowPageCount == other.shadowPageCount)
    #expect(mmu.access(Layout.data) != .translated(hostPhysical: first.host(Layout.dataFrame)))
  }
}
