import FastMMU
import Foundation
import Machine
import Workloads

/// Benchmarks B1–B3 of DESIGN.md, on the fast MMU.
enum FastMMUBenchmarks {
  static var workloads: [BenchmarkWorkload] {
    [
      BenchmarkWorkload(
        name: "b1",
        summary: "fast MMU, nested: 2D walks/s on B1 with every cache off",
        run: walks),
      BenchmarkWorkload(
        name: "b1-caches",
        summary: "fast MMU, nested: B1 walks/s with paging-structure caches on (TLB off)",
        run: cachedWalks),
      BenchmarkWorkload(
        name: "b2",
        summary: "fast MMU, nested: translations/s on TLB hits, 64-page working set",
        run: tlbHits),
      BenchmarkWorkload(
        name: "b3",
        summary: "fast MMU, shadow: touch B1's 262,144 pages twice; time and VM exits per pass",
        run: shadowFill),
      BenchmarkWorkload(
        name: "tradeoff",
        summary: "fast MMU: one trace under nested, shadow and paravirtual paging; exits by cause",
        run: tradeoff),
    ]
  }

  /// B1: 10 million seeded random reads over B1's state, no TLB, no paging-structure caches.
  static func walks(_ options: BenchmarkOptions) throws -> [BenchmarkFigure] {
    let workload = WalkWorkload(seed: options.seed)
    let addresses = workload.addresses(count: options.scaled(10_000_000), seed: options.seed &+ 1)
    // The MMU's memory is mapped in large blocks, returned to the system when it goes: the
    // resident set's drop when it goes is what it kept resident.
    var figures: [BenchmarkFigure] = []
    var withMMU = 0
    do {
      let mmu = try NestedMMU(workload.state, configuration: .uncached)
      figures = run(mmu, addresses, label: "2D walks, every cache off")
      withMMU = residentBytes()
    }
    let resident = withMMU - residentBytes()
    let tables = workload.state.memory.populatedFrames.count * 4096
    figures.append(BenchmarkFigure(name: "MMU resident", value: mib(resident), unit: "MiB"))
    figures.append(BenchmarkFigure(name: "tables' own bytes", value: mib(tables), unit: "MiB"))
    figures.append(
      BenchmarkFigure(
        name: "MMU resident beyond the tables", value: mib(max(0, resident - tables)), unit: "MiB"))
    return figures
  }

  /// B1 with the combined and guest-physical paging-structure caches on, the TLB off.
  static func cachedWalks(_ options: BenchmarkOptions) throws -> [BenchmarkFigure] {
    let workload = WalkWorkload(seed: options.seed)
    let addresses = workload.addresses(count: options.scaled(10_000_000), seed: options.seed &+ 1)
    let mmu = try NestedMMU(
      workload.state, configuration: MMUConfiguration(tlbEntries: 0))
    // Warm the caches once, as a long-running guest would have them.
    for address in addresses.prefix(100_000) { _ = mmu.translate(address, Access(.read)) }
    mmu.resetStatistics()
    return run(mmu, addresses, label: "2D walks, paging-structure caches on")
  }

  private static func run(_ mmu: NestedMMU, _ addresses: [UInt64], label: String)
    -> [BenchmarkFigure]
  {
    let access = Access(.read)
    var checksum: UInt64 = 0
    var faults = 0
    let seconds = measure {
      for address in addresses {
        switch mmu.translate(address, access) {
        case .translated(let hpa): checksum &+= hpa
        default: faults += 1
        }
      }
    }
    let stats = mmu.statistics
    return [
      BenchmarkFigure(name: label, value: Double(addresses.count) / seconds, unit: "walks/s"),
      BenchmarkFigure(
        name: "memory references per walk", value: stats.referencesPerWalk, unit: "refs"),
      BenchmarkFigure(name: "faults", value: Double(faults), unit: ""),
      BenchmarkFigure(name: "checksum (low 16 bits)", value: Double(checksum & 0xFFFF), unit: ""),
    ]
  }

  /// B2: B1's state with the TLB on; 64 seeded random pages (chosen to fit the direct-mapped
  /// TLB, one per slot), warmed, then translated over and over.
  static func tlbHits(_ options: BenchmarkOptions) throws -> [BenchmarkFigure] {
    let workload = WalkWorkload(seed: options.seed)
    let configuration = MMUConfiguration()
    let mmu = try NestedMMU(workload.state, configuration: configuration)
    var random = SeededGenerator(seed: options.seed &+ 2)
    var pages: [UInt64] = []
    var slots = Set<UInt64>()
    while pages.count < 64 {
      let page = UInt64.random(in: 0..<UInt64(workload.pages), using: &random)
      let linear = workload.base + page << 12
      if slots.insert((linear >> 12) % UInt64(configuration.tlbEntries)).inserted {
        pages.append(linear)
      }
    }
    let addresses = (0..<65_536).map { _ in
      pages[Int.random(in: 0..<64, using: &random)] | UInt64.random(in: 0..<512, using: &random)
        << 3
    }
    let access = Access(.read)
    for page in pages { _ = mmu.translate(page, access) }
    mmu.resetStatistics()
    let count = options.scaled(200_000_000)
    var checksum: UInt64 = 0
    let seconds = measure {
      checksum = addresses.withUnsafeBufferPointer { buffer in
        var sum: UInt64 = 0
        for index in 0..<count {
          if case .translated(let hpa) = mmu.translate(buffer[index & 0xFFFF], access) {
            sum &+= hpa
          }
        }
        return sum
      }
    }
    return [
      BenchmarkFigure(
        name: "translations on TLB hits", value: Double(count) / seconds, unit: "translations/s"),
      BenchmarkFigure(
        name: "walks during the run (TLB misses)", value: Double(mmu.statistics.walks), unit: ""),
      BenchmarkFigure(name: "checksum (low 16 bits)", value: Double(checksum & 0xFFFF), unit: ""),
    ]
  }

  /// B3: shadow mode over B1's state; every page touched once (each touch a
  /// hypervisor-induced fault), then again.
  static func shadowFill(_ options: BenchmarkOptions) throws -> [BenchmarkFigure] {
    let workload = WalkWorkload(pages: options.scaled(262_144), seed: options.seed)
    let mmu = try ShadowMMU(workload.state)
    let access = Access(.read)
    var figures: [BenchmarkFigure] = []
    for pass in 1...2 {
      mmu.resetStatistics()
      var checksum: UInt64 = 0
      let seconds = measure {
        for page in 0..<UInt64(workload.pages) {
          if case .translated(let hpa) = mmu.translate(workload.base + page << 12, access) {
            checksum &+= hpa
          }
        }
      }
      let stats = mmu.statistics
      figures += [
        BenchmarkFigure(name: "pass \(pass) time", value: seconds, unit: "s"),
        BenchmarkFigure(
          name: "pass \(pass) touches", value: Double(workload.pages) / seconds, unit: "pages/s"),
        BenchmarkFigure(name: "pass \(pass) VM exits", value: Double(stats.exits.total), unit: ""),
        BenchmarkFigure(
          name: "pass \(pass) hypervisor-induced faults",
          value: Double(stats.exits[.hypervisorPageFault]), unit: ""),
        BenchmarkFigure(
          name: "pass \(pass) hardware references per walk", value: stats.referencesPerWalk,
          unit: "refs"),
        BenchmarkFigure(
          name: "pass \(pass) checksum (bits 27:12)", value: Double(checksum >> 12 & 0xFFFF),
          unit: ""),
      ]
    }
    figures.append(
      BenchmarkFigure(name: "shadow pages", value: Double(mmu.shadowPageCount), unit: ""))
    return figures
  }

  /// The same trace under each strategy: B1's state with 16,384 pages; every page read; 1,024
  /// leaf entries rewritten in batches of 64 (a hypercall each under paravirtualization, a
  /// write-protection trap per entry under shadow paging with emulation, one per table with
  /// unsync); each changed page flushed and read again.
  static func tradeoff(_ options: BenchmarkOptions) throws -> [BenchmarkFigure] {
    let workload = WalkWorkload(pages: 16_384, seed: options.seed)
    let trace = tradeoffTrace(workload)
    let strategies: [(String, MMUMode, ShadowWritePolicy)] = [
      ("nested", .nested, .emulate), ("shadow (emulate)", .shadow, .emulate),
      ("shadow (unsync)", .shadow, .unsyncLevel1), ("paravirtual", .paravirtual, .emulate),
    ]
    var figures: [BenchmarkFigure] = []
    for (name, mode, policy) in strategies {
      let mmu = try makeMMU(
        mode, state: workload.state, configuration: MMUConfiguration(shadowWritePolicy: policy))
      let seconds = measure {
        for operation in trace { _ = mmu.apply(operation) }
      }
      let stats = mmu.statistics
      figures.append(BenchmarkFigure(name: "\(name): time", value: seconds, unit: "s"))
      figures.append(
        BenchmarkFigure(name: "\(name): VM exits", value: Double(stats.exits.total), unit: ""))
      for reason in VMExitReason.allCases where stats.exits[reason] > 0 {
        figures.append(
          BenchmarkFigure(
            name: "\(name):   \(reason.rawValue)", value: Double(stats.exits[reason]), unit: ""))
      }
      figures.append(
        BenchmarkFigure(
          name: "\(name): references per hardware walk", value: stats.referencesPerWalk,
          unit: "refs"))
      figures.append(
        BenchmarkFigure(
          name: "\(name): hypervisor software walks", value: Double(stats.softwareWalks), unit: ""))
    }
    return figures
  }

  /// The trade-off benchmark's operations.
  static func tradeoffTrace(_ workload: WalkWorkload) -> [TraceOperation] {
    let pages = UInt64(workload.pages)
    let changed: UInt64 = 1024
    let read = Access(.read)
    let reads = (0..<pages).map {
      TraceOperation.access(linearAddress: workload.base + $0 << 12, read)
    }
    let updates = (0..<changed).map { page -> PageTableUpdate in
      let entry = leafAddress(workload, workload.base + page << 12)
      let donor = leafAddress(workload, workload.base + (page + changed) << 12)
      let memory = workload.state.memory
      let hostOffset = workload.hostOffset << 12
      let value =
        memory[entry + hostOffset] & ~TableBuilder.addressMask
        | memory[donor + hostOffset] & TableBuilder.addressMask
      return PageTableUpdate(entry: entry, value: value)
    }
    let batches = stride(from: 0, to: updates.count, by: 64).map {
      TraceOperation.paravirtualBatch(Array(updates[$0..<$0 + 64]))
    }
    let flushes = (0..<changed).map {
      TraceOperation.invlpg(linearAddress: workload.base + $0 << 12)
    }
    return reads + batches + flushes + reads.prefix(Int(changed))
  }

  /// The guest-physical address of the guest leaf entry mapping `address` in a walk workload,
  /// found by reading its tables (placed at guest-physical + the workload's host offset).
  static func leafAddress(_ workload: WalkWorkload, _ address: UInt64) -> UInt64 {
    let memory = workload.state.memory
    var table = workload.state.guest.cr3 & TableBuilder.addressMask
    for level in stride(from: 4, to: 1, by: -1) {
      let slot = table + 8 * TableBuilder.index(of: address, level: level)
      table = memory[slot + workload.hostOffset << 12] & TableBuilder.addressMask
    }
    return table + 8 * TableBuilder.index(of: address, level: 1)
  }

  private static func mib(_ bytes: Int) -> Double { Double(bytes) / 1_048_576 }

  /// The process's resident set, from /proc/self/statm (0 where that does not exist).
  static func residentBytes() -> Int {
    guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else {
      return 0
    }
    let fields = text.split(separator: " ")
    guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
    return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
  }
}
