#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// What a dropped MMU leaves for the next one: its TLB, paging-structure caches and host
/// memory, emptied. A fuzzer builds an MMU per episode (every few hundred operations); taking
/// these from here saves the allocations, the page faults of touching fresh memory, and the
/// unmapping, which together cost as much as the episode's translations did.
///
/// Everything here is empty: an MMU recycles a part only after emptying it (a flushed TLB and
/// cache, zeroed memory), so an MMU that takes one starts from nothing, as a new part would.
/// At most ``limit`` parts of each kind are kept; a memory too large to keep cheaply
/// (``HostMemory/isRecyclable``) goes back to the system. Shared by every thread, under a lock.
final class Recycler: @unchecked Sendable {
  /// The process's recycler.
  static let shared = Recycler()

  /// The most parts of each kind kept.
  static let limit = 4

  private let lock: UnsafeMutablePointer<pthread_mutex_t>
  private var buffers: [TranslationBuffer] = []
  private var caches: [PagingStructureCache] = []
  private var memories: [HostMemory] = []

  private init() {
    lock = .allocate(capacity: 1)
    pthread_mutex_init(lock, nil)
  }

  private func locked<T>(_ body: () -> T) -> T {
    pthread_mutex_lock(lock)
    defer { pthread_mutex_unlock(lock) }
    return body()
  }

  /// An empty TLB of `capacity` entries (rounded up to a power of two).
  func translationBuffer(capacity: Int) -> TranslationBuffer {
    let kept = locked { () -> TranslationBuffer? in
      guard let index = buffers.lastIndex(where: { $0.capacity >= capacity }),
        buffers[index].capacity < 2 * capacity
      else { return nil }
      return buffers.remove(at: index)
    }
    return kept ?? TranslationBuffer(capacity: capacity)
  }

  /// Empty paging-structure caches of `entriesPerLevel` entries per level (rounded up to a
  /// power of two).
  func pagingStructureCache(entriesPerLevel: Int) -> PagingStructureCache {
    let kept = locked { () -> PagingStructureCache? in
      guard let index = caches.lastIndex(where: { $0.entriesPerLevel >= entriesPerLevel }),
        caches[index].entriesPerLevel < 2 * entriesPerLevel
      else { return nil }
      return caches.remove(at: index)
    }
    return kept ?? PagingStructureCache(entriesPerLevel: entriesPerLevel)
  }

  /// Empty memory whose direct window starts at frame `base`.
  func hostMemory(base: UInt64) -> HostMemory {
    guard let kept = locked({ memories.popLast() }) else { return HostMemory(base: base) }
    kept.rebase(base)
    return kept
  }

  /// Takes a TLB its MMU no longer uses: flushed and kept, if there is room.
  func recycle(_ buffer: TranslationBuffer) {
    buffer.reset()
    locked {
      if buffers.count < Self.limit { buffers.append(buffer) }
    }
  }

  /// Takes paging-structure caches their MMU no longer uses: flushed and kept, if there is
  /// room.
  func recycle(_ cache: PagingStructureCache) {
    cache.flush()
    locked {
      if caches.count < Self.limit { caches.append(cache) }
    }
  }

  /// Takes memory its MMU no longer uses: emptied and kept, if it is small and there is room.
  func recycle(_ memory: HostMemory) {
    guard memory.isRecyclable, counts.memories < Self.limit else { return }
    memory.empty()
    locked {
      if memories.count < Self.limit { memories.append(memory) }
    }
  }

  /// The number of parts of each kind kept now.
  var counts: (buffers: Int, caches: Int, memories: Int) {
    locked { (buffers.count, caches.count, memories.count) }
  }
}
