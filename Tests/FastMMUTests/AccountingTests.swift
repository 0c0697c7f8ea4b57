import FastMMU
import Machine
import Testing
import Workloads

/// VM exits by cause and references per walk (issue 4, "accounting").
@Suite struct AccountingTests {
  @Test func shadowPagingInterceptsINVPCIDAndControlRegisterWrites() throws {
    var scenario = Scenario(.ept)
    scenario.map(Layout.data, to: Layout.dataFrame)
    let mmu = try ShadowMMU(scenario.state)
    #expect(
      mmu.apply(.invpcid(.allContexts, pcid: 0, linearAddress: 0)).exits == [.invpcid])
    #expect(mmu.apply(.writeRegister(.cr4, value: scenario.cr4)).exits == [.controlRegisterAccess])
    #expect(mmu.apply(.writeRegister(.pkru, value: 0)).exits.isEmpty)
    #expect(mmu.statistics.exits[.invpcid] == 1)
    #expect(mmu.statistics.exits.total == 2)
  }

  @Test func paravirtualFlushesAreHypercalls() throws {
    var scenario = Scenario(.ept)
    scenario.map(Layout.data, to: Layout.dataFrame)
    let mmu = try ParavirtualMMU(scenario.state)
    #expect(mmu.apply(.invpcid(.singleContext, pcid: 0, linearAddress: 0)).exits == [.hypercall])
    #expect(mmu.apply(.writeRegister(.cr4, value: scenario.cr4)).exits == [.controlRegisterAccess])
  }

  @Test func nestedPagingTakesNoExitForGuestFaultsOrFlushes() throws {
    var scenario = Scenario(.ept)
    scenario.map(Layout.data, to: Layout.dataFrame)
    let mmu = try NestedMMU(scenario.state)
    let operations: [TraceOperation] = [
      .access(linearAddress: Layout.code, Access(.read)),
      .invlpg(linearAddress: Layout.data),
      .writeRegister(.cr3, value: scenario.guest.root),
      .invpcid(.allContextsIncludingGlobal, pcid: 0, linearAddress: 0),
    ]
    for operation in operations { #expect(mmu.apply(operation).exits.isEmpty) }
    #expect(mmu.statistics.exits.total == 0)
  }

  @Test func resettingStatisticsZeroesEveryCounter() throws {
    var scenario = Scenario(.ept)
    scenario.map(Layout.data, to: Layout.dataFrame)
    for mode in MMUMode.allCases {
      let mmu = try makeMMU(mode, state: scenario.state)
      _ = mmu.access(Layout.data)
      _ = mmu.access(Layout.code)
      #expect(mmu.statistics.walks > 0)
      mmu.resetStatistics()
      #expect(mmu.statistics == MMUStatistics())
    }
  }

  @Test func theThreeStrategiesCostDifferentReferencesPerMiss() throws {
    var scenario = Scenario(.ept)
    scenario.map(Layout.data, to: Layout.dataFrame)
    let uncached = MMUConfiguration.uncached
    var perWalk: [MMUMode: Double] = [:]
    for mode in MMUMode.allCases {
      let mmu = try makeMMU(mode, state: scenario.state, configuration: uncached)
      _ = mmu.access(Layout.data)
      mmu.resetStatistics()
      _ = mmu.access(Layout.data)
      perWalk[mode] = mmu.statistics.referencesPerWalk
    }
    #expect(perWalk == [.nested: 24, .shadow: 4, .paravirtual: 4])
  }

  @Test func exitCountsDescribeThemselves() {
    var counts = VMExitCounts()
    #expect(counts.description == "none")
    counts[.hypercall] += 2
    counts[.eptViolation] += 1
    #expect(counts.description == "hypercall: 2, ept-violation: 1")
    #expect(counts.total == 3)
  }
}
