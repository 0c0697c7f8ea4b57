import Machine

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// Host physical memory as the fast MMU keeps it: 4-KiB pages found by indexing a table with
/// the frame number, the way an emulator keeps guest RAM, so a paging-entry load is two
/// dependent loads and never a hash lookup.
///
/// The frame table covers frames `base ..< base + directCount` by direct index; it is allocated
/// zero-filled, so the operating system backs only the parts that name a populated page. Frames
/// outside that window (addresses near the top of a 52-bit space, rare in practice) live in an
/// overflow dictionary. Pages that were never written are not stored and read as zero.
///
/// A small memory (its pages within one slab) that an MMU leaves behind is emptied and kept by
/// the ``Recycler`` for the next MMU, so a fuzzer that builds an MMU per episode maps, faults
/// in and unmaps its slab and frame table once, not once per episode.
final class HostMemory {
  /// The first frame of the direct window.
  private(set) var base: UInt64
  /// The frame table: `direct[f - base]` is the page of frame `f`, or `nil`.
  private(set) var direct: UnsafeMutablePointer<UnsafeMutablePointer<UInt64>?>
  /// The number of frames the direct window covers (a power of two).
  private(set) var directCount: UInt64
  /// What walkers read: the frame table's address and size, kept up to date as it grows, at a
  /// fixed address for the memory's lifetime.
  let header: UnsafeMutablePointer<MemoryHeader>
  /// Pages of frames outside the direct window.
  private var overflow: [UInt64: UnsafeMutablePointer<UInt64>] = [:]
  /// Page storage, carved out of 2-MiB slabs.
  private var slabs: [UnsafeMutableRawPointer] = []
  private var slabUsed = HostMemory.pagesPerSlab
  private var freePages: [UnsafeMutablePointer<UInt64>] = []
  /// Indices into the frame table that were given a page (some may have been discarded since):
  /// growing the table and listing its pages visit these, never the whole sparse table.
  private var directIndices: [Int] = []

  /// The largest direct window: 2^26 frames (256 GiB of physical addresses, a 512-MiB table
  /// of which only the touched pages are ever resident).
  static let directLimit: UInt64 = 1 << 26
  private static let pagesPerSlab = 512
  private static let pageBytes = 4096

  /// Empty memory whose direct window starts at frame `base`.
  init(base: UInt64 = 0) {
    self.base = base
    directCount = 1 << 12
    direct = Self.allocateTable(count: directCount)
    header = .allocate(capacity: 1)
    header.initialize(
      to: MemoryHeader(direct: direct, directCount: directCount, base: base, owner: nil))
    header.pointee.owner = Unmanaged.passUnretained(self)
  }

  /// Memory holding a snapshot's words. Pages are laid out in ascending frame order, so
  /// tables that are neighbours in physical memory are neighbours here too.
  convenience init(_ memory: PhysicalMemory) {
    self.init()
    load(memory)
  }

  /// Memory holding a snapshot's words: a recycled one if the ``Recycler`` has one.
  static func make(_ memory: PhysicalMemory) -> HostMemory {
    let result = Recycler.shared.hostMemory(base: 0)
    result.load(memory)
    return result
  }

  /// Empty memory whose direct window starts at frame `base`: a recycled one if the
  /// ``Recycler`` has one.
  static func make(base: UInt64) -> HostMemory {
    Recycler.shared.hostMemory(base: base)
  }

  /// Writes a snapshot's words into empty memory, the frame table first grown once to cover
  /// the highest frame it can.
  private func load(_ memory: PhysicalMemory) {
    let frames = memory.populatedFrames
    if let highest = frames.last(where: { $0 &- base < Self.directLimit }),
      highest &- base >= directCount
    {
      grow(toCover: highest &- base)
    }
    for frame in frames { createPage(frame: frame) }
    for (address, value) in memory.words { write(address, value) }
  }

  /// Whether the memory is small enough to be worth keeping for reuse: its pages fit one
  /// slab, so keeping it holds at most 2 MiB of pages (and the frame-table pages that name
  /// them) resident, and a large memory still goes back to the system when its MMU goes.
  var isRecyclable: Bool { slabs.count <= 1 }

  /// Makes the memory empty, as a new one is: every page it handed out is zeroed and taken
  /// back, the frame table names no page, the overflow is empty. Keeps the slab and the
  /// (zeroed) frame table mapped. Only for a memory that ``isRecyclable``.
  func empty() {
    precondition(isRecyclable)
    for index in directIndices {
      if let page = direct[index] {
        page.update(repeating: 0, count: 512)
        direct[index] = nil
      }
    }
    directIndices.removeAll(keepingCapacity: true)
    for page in overflow.values { page.update(repeating: 0, count: 512) }
    overflow.removeAll()
    // Every page carved from the slab is now zero (discarded ones were zeroed when they were
    // discarded), so carving starts over.
    freePages.removeAll(keepingCapacity: true)
    slabUsed = slabs.isEmpty ? Self.pagesPerSlab : 0
  }

  /// Moves the direct window of an empty memory to start at frame `base`.
  func rebase(_ base: UInt64) {
    precondition(directIndices.isEmpty && overflow.isEmpty, "only an empty memory moves")
    self.base = base
    header.pointee.base = base
  }

  deinit {
    header.deallocate()
    Self.unmap(direct, bytes: Int(directCount) * Self.pointerBytes)
    for slab in slabs { Self.unmap(slab, bytes: Self.pagesPerSlab * Self.pageBytes) }
  }

  private static let pointerBytes = MemoryLayout<UnsafeMutablePointer<UInt64>?>.stride

  /// Zero-filled anonymous memory straight from the system, as an emulator maps guest RAM:
  /// pages become resident only when touched, and go back when unmapped.
  private static func map(bytes: Int) -> UnsafeMutableRawPointer {
    #if canImport(Glibc)
      let address = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
      guard let address, address != MAP_FAILED else { fatalError("out of memory") }
      return address
    #else
      guard let address = calloc(bytes, 1) else { fatalError("out of memory") }
      return address
    #endif
  }

  private static func unmap(_ address: UnsafeMutableRawPointer, bytes: Int) {
    #if canImport(Glibc)
      _ = munmap(address, bytes)
    #else
      free(address)
    #endif
  }

  private static func allocateTable(count: UInt64) -> UnsafeMutablePointer<
    UnsafeMutablePointer<UInt64>?
  > {
    map(bytes: Int(count) * pointerBytes).bindMemory(
      to: UnsafeMutablePointer<UInt64>?.self, capacity: Int(count))
  }

  /// A view for walkers, valid until the next write that creates a page.
  var view: MemoryView { MemoryView(header: header) }

  /// The word at an 8-byte-aligned physical address; zero where nothing was written.
  func read(_ address: UInt64) -> UInt64 {
    guard let page = page(frame: address >> 12) else { return 0 }
    return page[Int(truncatingIfNeeded: (address & 0xFFF) >> 3)]
  }

  /// Stores a word, creating its page when needed.
  func write(_ address: UInt64, _ value: UInt64) {
    let frame = address >> 12
    let slot = Int(truncatingIfNeeded: (address & 0xFFF) >> 3)
    if let page = page(frame: frame) {
      page[slot] = value
    } else if value != 0 {
      createPage(frame: frame)[slot] = value
    }
  }

  /// The page of `frame`, or `nil` if it was never written.
  func page(frame: UInt64) -> UnsafeMutablePointer<UInt64>? {
    let index = frame &- base
    if index < directCount { return direct[Int(truncatingIfNeeded: index)] }
    return overflow[frame]
  }

  /// Drops a page: every word of it reads zero again.
  func discard(frame: UInt64) {
    let index = frame &- base
    let page: UnsafeMutablePointer<UInt64>?
    if index < directCount {
      page = direct[Int(truncatingIfNeeded: index)]
      direct[Int(truncatingIfNeeded: index)] = nil
    } else {
      page = overflow.removeValue(forKey: frame)
    }
    if let page {
      page.update(repeating: 0, count: 512)
      freePages.append(page)
    }
  }

  @discardableResult
  private func createPage(frame: UInt64) -> UnsafeMutablePointer<UInt64> {
    let page = allocatePage()
    let index = frame &- base
    if index < Self.directLimit {
      if index >= directCount { grow(toCover: index) }
      direct[Int(truncatingIfNeeded: index)] = page
      directIndices.append(Int(truncatingIfNeeded: index))
    } else {
      overflow[frame] = page
    }
    return page
  }

  private func allocatePage() -> UnsafeMutablePointer<UInt64> {
    if let page = freePages.popLast() { return page }
    if slabUsed == Self.pagesPerSlab {
      slabs.append(Self.allocateSlab())
      slabUsed = 0
    }
    let slab = slabs[slabs.count - 1]
    let page = (slab + slabUsed * Self.pageBytes).bindMemory(to: UInt64.self, capacity: 512)
    slabUsed += 1
    return page
  }

  /// A zeroed 2-MiB slab of page storage.
  private static func allocateSlab() -> UnsafeMutableRawPointer {
    map(bytes: pagesPerSlab * pageBytes)
  }

  private func grow(toCover index: UInt64) {
    var count = directCount
    while count <= index { count <<= 1 }
    let table = Self.allocateTable(count: count)
    // Only the populated entries: copying the whole table would make every page of both
    // tables resident.
    for index in directIndices { table[index] = direct[index] }
    Self.unmap(direct, bytes: Int(directCount) * Self.pointerBytes)
    direct = table
    directCount = count
    header.pointee.direct = table
    header.pointee.directCount = count
  }

  /// Every populated frame, ascending.
  var populatedFrames: [UInt64] {
    let populated = Set(directIndices.filter { direct[$0] != nil })
    return populated.sorted().map { base + UInt64($0) } + overflow.keys.sorted()
  }

  /// The contents as a sparse snapshot memory (nonzero words only).
  var snapshot: PhysicalMemory {
    var memory = PhysicalMemory()
    for frame in populatedFrames {
      guard let page = page(frame: frame) else { continue }
      for slot in 0..<512 where page[slot] != 0 {
        memory[frame << 12 | UInt64(slot) << 3] = page[slot]
      }
    }
    return memory
  }
}

/// The part of ``HostMemory`` walkers read, at a stable address.
struct MemoryHeader {
  var direct: UnsafeMutablePointer<UnsafeMutablePointer<UInt64>?>
  var directCount: UInt64
  var base: UInt64
  var owner: Unmanaged<HostMemory>?
}

/// A walker's handle on ``HostMemory``: the frame table's address, size and base copied into
/// a value, so a walk keeps them in registers and never counts references. Valid until the
/// memory next creates a page: a walk never does (its A/D writes hit pages it read).
struct MemoryView {
  let direct: UnsafeMutablePointer<UnsafeMutablePointer<UInt64>?>
  let directCount: UInt64
  let base: UInt64
  let header: UnsafeMutablePointer<MemoryHeader>

  init(header: UnsafeMutablePointer<MemoryHeader>) {
    direct = header.pointee.direct
    directCount = header.pointee.directCount
    base = header.pointee.base
    self.header = header
  }

  /// The word at an 8-byte-aligned physical address; zero where nothing was written.
  @inline(__always)
  func load(_ address: UInt64) -> UInt64 {
    let index = (address &>> 12) &- base
    guard index < directCount else { return loadOutside(address) }
    guard let page = direct[Int(truncatingIfNeeded: index)] else { return 0 }
    return page[Int(truncatingIfNeeded: (address & 0xFFF) &>> 3)]
  }

  /// A load outside the direct window: rare, so out of line.
  @inline(never)
  func loadOutside(_ address: UInt64) -> UInt64 {
    header.pointee.owner?.takeUnretainedValue().read(address) ?? 0
  }

  /// Stores into a word whose page exists (a paging entry just read as nonzero): the A/D update
  /// of a walk, which never creates a page.
  @inline(__always)
  func storeExisting(_ address: UInt64, _ value: UInt64) {
    let index = (address &>> 12) &- base
    if index < directCount, let page = direct[Int(truncatingIfNeeded: index)] {
      page[Int(truncatingIfNeeded: (address & 0xFFF) &>> 3)] = value
    } else {
      header.pointee.owner?.takeUnretainedValue().write(address, value)
    }
  }
}
