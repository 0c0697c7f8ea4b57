#if DEBUG
  import FastMMU

  extension BugHunt {
    /// The catalogue's hunt for `bug` (docs/bug-catalogue.md): the mode, campaign seed, focus
    /// and budget with which the fuzzer must find it.
    ///
    /// Each seed was found by running campaigns from seeds 1 and 2 with the same mode and
    /// focus until the bug showed, and taking the seed of the episode it showed in (episode `e`
    /// of campaign `s` is episode 0 of campaign `s + e·0x9E3779B97F4A7C15`), so that the tests
    /// stay fast in a debug build; the operations the search needed are in
    /// docs/bug-catalogue.md; `nestcheck fuzz --bug NAME --focus F --episode-length 40` (and
    /// `--prove-every 10` for the one hunt that proves) runs such a search. A change of the
    /// generator or the start states changes every episode of the mixes it touches, and the
    /// search must be run again (`nestcheck bench detection` shows a miss).
    public static func catalogue(_ bug: InjectedBug) -> BugHunt {
      let (mode, seed, focus): (MMUMode, UInt64, OperationMix.Focus?) =
        switch bug {
        case .xdNotInherited: (.paravirtual, 1_663_341_875_487_337_578, nil)
        case .writeProtectIgnored: (.paravirtual, 4_354_685_564_936_845_355, nil)
        case .accessedNotSetOnSuccess: (.paravirtual, 11_400_714_819_323_198_486, nil)
        case .dirtySetOnFaultingWrite: (.paravirtual, 11_400_714_819_323_198_486, nil)
        case .protectionKeyBitDropped: (.paravirtual, 10_372_713_005_361_028_286, nil)
        case .smapRescuesImplicitAccess: (.paravirtual, 11_400_714_819_323_198_486, nil)
        case .nonCanonicalAsPageFault: (.paravirtual, 11_400_714_819_323_198_486, nil)
        case .fetchBitWithoutSMEPOrNXE: (.paravirtual, 4_354_685_564_936_845_355, .controls)
        case .amdBit8NotReserved: (.paravirtual, 2_934_021_998_537_672_332, .guestTables)
        case .largePageOffsetTruncated: (.nested, 11_400_714_819_323_198_486, nil)
        case .finalTranslationBeforeGuestFault: (.nested, 1, nil)
        case .eptTableReadsNotWrites: (.nested, 16_390_740_445_785_211_217, .nestedTables)
        case .eptQualificationBitsReordered: (.nested, 3_326_683_750_974_675_155, .nestedTables)
        case .eptMisconfigurationAsViolation:
          (.nested, 3_326_683_750_974_675_155, .nestedTables)
        case .inveptKeepsCombinedMappings: (.nested, 13_064_056_694_810_536_064, .nestedTables)
        case .nptAccessesNotUser: (.nested, 17_418_742_259_747_381_417, .nestedTables)
        case .nptFinalBitAlwaysSet: (.nested, 1, .nestedTables)
        case .nptTableReadsNotWrites: (.nested, 1, .nestedTables)
        case .invlpgKeepsEntry: (.nested, 7_681_369_315_911_520_509, .guestTables)
        case .pgeToggleKeepsGlobals: (.paravirtual, 1_270_680_123_050_334_755, .guestTables)
        case .pcidIgnoredInTag: (.nested, 5_625_365_687_987_180_110, .guestTables)
        case .writeThroughCleanEntry: (.nested, 10_372_713_005_361_028_286, nil)
        case .faultKeepsStaleEntry: (.nested, 17_661_420_568_835_545_972, .guestTables)
        case .shadowRoleIgnoresWriteProtect: (.shadow, 1, .shadowStructure)
        case .staleWriteProtectInRole: (.shadow, 8_709_371_129_873_690_709, .controls)
        case .inheritedAccessFromParentOnly:
          (.shadow, 4_354_685_564_936_845_355, .shadowStructure)
        case .unsyncLinkedWithoutSync: (.shadow, 8_709_371_129_873_690_709, .shadowStructure)
        case .writableShadowAliasOfPageTable: (.shadow, 13_064_056_694_810_536_063, nil)
        case .cleanPageMappedWritable: (.shadow, 10_372_713_005_361_028_286, nil)
        case .paravirtualWritableTableMapping:
          (.paravirtual, 15_755_400_384_260_043_840, .guestTables)
        case .paravirtualBatchContinuesAfterFailure:
          (.paravirtual, 11_400_714_819_323_198_486, .guestTables)
        }
      // A writable shadow alias of a guest page table changes no guest observation (the write
      // it lets through is one the correct MMU emulates after a trap): only the proof of page-
      // table protection (SEMANTICS §5.5 I5) on the exported shadow state shows it.
      let proveEvery = bug == .writableShadowAliasOfPageTable ? 10 : 0
      return BugHunt(
        bug: bug, mode: mode, seed: seed, budget: 200, focus: focus, proveEvery: proveEvery)
    }
  }
#endif
