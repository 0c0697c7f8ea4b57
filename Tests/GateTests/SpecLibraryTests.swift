import FastMMU
import Machine
import ReferenceModel
import Testing

@testable import Gate

/// The spec library in specs/: it loads, it covers what issue 6 asks, and its expected verdicts
/// agree with a concrete spot check wherever one can judge them.
@Suite struct SpecLibraryTests {
  static let library: [BuiltSpec] = (try? SpecFiles.load([repositoryPath("specs")])) ?? []

  static func named(_ name: String) -> BuiltSpec? {
    library.first { $0.spec.name == name }
  }

  @Test func everySpecLoadsAndBuilds() throws {
    let specs = try SpecFiles.load([repositoryPath("specs")])
    #expect(specs.count >= 30)
    #expect(Set(specs.map(\.spec.name)).count == specs.count)
  }

  @Test func specNamesMatchTheirFileNames() {
    for built in Self.library {
      let file = built.spec.file.split(separator: "/").last.map(String.init) ?? ""
      #expect(file == built.spec.name + ".yaml", "\(built.spec.file)")
    }
  }

  @Test func everySpecDescribesItself() {
    for built in Self.library {
      #expect(built.spec.description.count >= 20, "\(built.spec.name)")
    }
  }

  // MARK: - Coverage (issue 6, item 2)

  @Test func coversFourAndFiveLevelGuests() {
    let levels = Set(Self.library.map { $0.spec.guest.paging })
    #expect(levels.isSuperset(of: [.fourLevel, .fiveLevel]))
    #expect(Self.library.contains { $0.spec.nested.levels == 5 })
  }

  @Test func coversEPTWithAndWithoutAccessedDirtyAndExecuteOnly() {
    let epts = Self.library.compactMap { built -> (EPTSpec, BuiltSpec)? in
      if case .ept(let ept) = built.spec.nested { return (ept, built) }
      return nil
    }
    #expect(epts.contains { $0.0.accessedDirty })
    #expect(epts.contains { !$0.0.accessedDirty })
    #expect(
      epts.contains { ept in
        ept.1.spec.hostMappings.contains { $0.rights == [.exec] }
      })
  }

  @Test func coversNPT() {
    let npt = Self.library.filter {
      if case .npt = $0.spec.nested { return true }
      return false
    }
    #expect(npt.count >= 3)
    #expect(npt.contains { $0.spec.shadow != nil })
  }

  @Test func coversLargePagesAtEachStageAndMixed() {
    func pages(_ built: BuiltSpec) -> (
      guest: Set<PageSize>, host: Set<PageSize>, shadow: Set<PageSize>
    ) {
      var shadow: Set<PageSize> = []
      if case .raw(let raw) = built.spec.shadow { shadow = Set(raw.mappings.map(\.page)) }
      return (
        Set(built.spec.guestMappings.map(\.page)), Set(built.spec.hostMappings.map(\.page)), shadow
      )
    }
    let all = Self.library.map(pages)
    for size in [PageSize.large, .huge] {
      #expect(all.contains { $0.guest.contains(size) }, "guest \(size.name)")
      #expect(all.contains { $0.host.contains(size) }, "host \(size.name)")
      #expect(all.contains { $0.shadow.contains(size) }, "shadow \(size.name)")
    }
    // Mixed across stages: a spec whose guest and host use different large sizes.
    #expect(all.contains { $0.guest.contains(.large) && $0.host.contains(.huge) })
    #expect(all.contains { $0.guest.contains(.huge) && $0.host.contains(.large) })
  }

  @Test func coversAliasedAndSelfMappingGuestTables() {
    let links = Self.library.flatMap { $0.spec.rawEntries }.filter { $0.table == .guest }
    #expect(links.contains { if case .root = $0.pointsTo { true } else { false } })
    #expect(links.contains { if case .table = $0.pointsTo { true } else { false } })
  }

  @Test func coversEachFastMMUMode() {
    let built = Set(
      Self.library.compactMap { spec -> MMUMode? in
        if case .fastMMU(let recipe) = spec.spec.shadow { return recipe.value.mode }
        return nil
      })
    #expect(built == [.shadow, .paravirtual])
    let fuzzed = Set(Self.library.flatMap { $0.spec.fuzz?.modes ?? [] })
    #expect(fuzzed == Set(MMUMode.allCases))
    let policies = Set(
      Self.library.compactMap { spec -> ShadowWritePolicy? in
        if case .fastMMU(let recipe) = spec.spec.shadow { return recipe.value.writePolicy }
        return nil
      })
    #expect(policies == Set(ShadowWritePolicy.allCases))
  }

  /// Every property of a state has a negative spec. The entry lemmas are not one: they are a
  /// property of the reference's derivation rule (SEMANTICS §5.2) on the hardware KVM runs, which
  /// no spec can change; the prover's own tests check that a wrong rule is caught.
  @Test func hasANegativeSpecForEveryPropertyOfAState() {
    var violated: Set<String> = []
    for built in Self.library {
      if case .violated(let names) = built.spec.expectation { violated.formUnion(names) }
    }
    for property in Property.allCases where property != .entryLemmas {
      #expect(violated.contains(property.rawValue), "no negative spec for \(property.rawValue)")
    }
  }

  @Test func negativeSpecsLiveInSpecsNegativeAndSaySo() {
    for built in Self.library {
      let negative = built.spec.file.contains("/negative/")
      if case .violated = built.spec.expectation {
        #expect(negative, "\(built.spec.name)")
        #expect(built.spec.description.hasPrefix("NEGATIVE."), "\(built.spec.name)")
      } else {
        #expect(!negative, "\(built.spec.name)")
      }
    }
  }

  // MARK: - Expected verdicts, spot-checked

  static var spotChecked: [String] {
    library.filter {
      if case .fastMMU = $0.spec.shadow { return false }
      return !Set($0.spec.properties).isDisjoint(with: ConcreteSpotCheck.judged)
    }.map(\.spec.name)
  }

  /// A negative spec's violation is found at its own pages; a positive spec shows none there.
  @Test(arguments: spotChecked)
  func expectedVerdictAgreesWithASpotCheck(_ name: String) throws {
    let built = try #require(Self.named(name))
    let found = try ConcreteSpotCheck(built).violations()
    for property in built.spec.properties where ConcreteSpotCheck.judged.contains(property) {
      let expected = built.checks.first { $0.name == property.rawValue }?.expected
      if expected == .violated {
        #expect(found.contains(property), "\(name): \(property.rawValue) should be violated")
      } else {
        #expect(!found.contains(property), "\(name): \(property.rawValue) should hold")
      }
    }
  }

  @Test func theSpotCheckJudgesMostOfTheLibrary() {
    #expect(Self.spotChecked.count >= 35)
  }

  /// Isolation covers every guest physical address the host maps, reachable by the guest or
  /// not, so a spec that expects it to hold keeps every host and shadow mapping in its ranges.
  @Test func specsExpectingIsolationKeepEveryMappingInTheirRanges() {
    let expectingIsolation = Self.library.filter { built in
      built.checks.contains { $0.name == "isolation" && $0.expected == .holds }
    }
    #expect(expectingIsolation.count >= 20)
    for built in expectingIsolation {
      var ranges = AddressSet()
      for range in built.spec.hostRanges { ranges.insert(range.value) }
      var targets = built.spec.hostMappings.map { AddressRange(lower: $0.hpa, size: $0.size) }
      if case .raw(let raw) = built.spec.shadow {
        targets += raw.mappings.map { AddressRange(lower: $0.hpa, size: $0.size) }
      }
      for target in targets {
        #expect(ranges.firstMissing(in: target) == nil, "\(built.spec.name): \(target)")
      }
    }
  }

  // MARK: - Built states translate as the specs say

  /// Each guest mapping's first and last byte reach the host address its host mapping gives,
  /// through the built tables, with an access its rights allow.
  @Test(arguments: library.map(\.spec.name))
  func guestMappingsTranslateAsWritten(_ name: String) throws {
    let built = try #require(Self.named(name))
    let model = try ConcreteModel(built.state)
    let keys = built.state.guest.cr4 & (1 << 22) != 0
    for mapping in built.spec.guestMappings where mapping.backed ?? true {
      if keys && mapping.key != 0 { continue }
      let host = built.spec.hostMappings.first {
        $0.gpa <= mapping.gpa && mapping.gpa - $0.gpa < $0.size
      }
      let readable = host.map { $0.rights.contains(.read) } ?? true
      let kind: AccessKind = readable ? .read : .fetch
      let access = Access(kind, user: mapping.rights.contains(.user))
      for offset in [0, mapping.size - 1] {
        let gpa = mapping.gpa + offset
        let expected = host.map { $0.hpa + (gpa - $0.gpa) } ?? gpa
        #expect(
          model.translate(mapping.gva + offset, access).outcome
            == .translated(hostPhysical: expected),
          "\(name): \(hex(mapping.gva + offset))")
      }
    }
  }
}
