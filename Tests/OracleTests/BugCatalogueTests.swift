// The bug catalogue exists only where FastMMU is built with NESTCHECK_BUGS: debug builds.
#if DEBUG
  import FastMMU
  import Machine
  import Oracle
  import Testing

  /// The fuzzer finds every catalogued bug (issue 5, item 6; docs/bug-catalogue.md): with the
  /// catalogue's fixed mode, seed and budget, a campaign against the fast MMU built with the bug
  /// reports a failure, shrinks it to a short replay, and that replay — written and read back —
  /// fails again with the bug and runs clean without it.
  @Suite struct BugCatalogueTests {
    /// The longest shrunk reproducer accepted. Every bug needs at most a few operations to
    /// show: a change of an entry or a control, perhaps a flush or a first access that fills a
    /// cache, and the access that observes the bug.
    static let shrunkBound = 8

    @Test(
      "a fixed campaign finds the bug and shrinks it to a replay that fails only with the bug",
      arguments: InjectedBug.allCases)
    func campaignFindsAndShrinks(_ bug: InjectedBug) throws {
      let hunt = BugHunt.catalogue(bug)
      #expect(bug.modes.contains(hunt.mode), "the hunt runs in a mode the bug applies to")
      let report = hunt.run()
      let finding = try #require(
        report.findings.first,
        "\(bug.rawValue) not found in \(hunt.budget) operations (\(hunt.mode), seed \(hunt.seed))")
      #expect(finding.operationsBefore < hunt.budget)
      let shrunk = try #require(finding.shrunk)
      #expect(shrunk.operations.count <= Self.shrunkBound)
      #expect(shrunk.operations.count <= finding.replay.operations.count)

      let reloaded = try Replay.load(shrunk.text, file: "\(bug.rawValue).jsonl")
      #expect(reloaded.operations == shrunk.operations)
      #expect(hunt.rerun(reloaded, buggy: true).isFailure, "the replay fails with the bug")
      #expect(hunt.rerun(reloaded, buggy: false) == .agreed, "and runs clean without it")
    }

    @Test("the catalogue holds at least 20 bugs covering SEMANTICS §1.9, §2.8, §3.6, §5.9, §6")
    func catalogueCoversTheHistoricalBugSections() {
      #expect(InjectedBug.allCases.count >= 20)
      let sections = Set(InjectedBug.allCases.map(\.section))
      for required in ["§1.9", "§2.8", "§3.6", "§5.9", "§6"] {
        #expect(sections.contains(required), "no bug from SEMANTICS \(required)")
      }
    }
  }
#endif
