import Machine
import Prover
import ReferenceModel
import Testing

/// The entry lemma (SEMANTICS §5.2, docs/prover.md): the reference derivation of a shadow leaf
/// never grants more than the composition of guest leaf, inherited rights and host leaf, for
/// every value of every entry, under EPT and NPT; and the lemma is not vacuous — each
/// derivation that forgets one step of §5.2 fails it with a counterexample.
@Suite("Entry lemmas")
struct EntryLemmaTests {
  /// A host format and the configuration the lemma is proved for.
  struct Format: CustomTestStringConvertible, Sendable {
    var name: String
    var configuration: Configuration
    var hostAddressBits: Int
    var testDescription: String { name }
  }

  static let formats = [
    Format(
      name: "4-level guest over 4-level EPT",
      configuration: Configuration(
        guestLevels: 4,
        nested: .ept(levels: 4, addressBits: 46, executeOnly: true, gigabytePages: true)),
      hostAddressBits: 46),
    Format(
      name: "4-level guest over 4-level NPT",
      configuration: Configuration(
        guestLevels: 4, vendor: .amd, nested: .npt(levels: 4, addressBits: 48)),
      hostAddressBits: 48),
    Format(
      name: "5-level guest over 5-level EPT without execute-only or 1-GiB EPT pages",
      configuration: Configuration(
        guestLevels: 5,
        nested: .ept(levels: 5, addressBits: 52, executeOnly: false, gigabytePages: false)),
      hostAddressBits: 52),
    Format(
      name: "5-level guest over 4-level NPT, guest without 1-GiB pages",
      configuration: Configuration(
        guestLevels: 5, guestAddressBits: 40, guestGigabytePages: false, vendor: .amd,
        nested: .npt(levels: 4, addressBits: 48)),
      hostAddressBits: 48),
  ]

  @Test("The reference derivation never grants more than the composition", arguments: formats)
  func referenceDerivationHolds(format: Format) throws {
    let report = try proveEntryLemmas(format.configuration, hostAddressBits: format.hostAddressBits)
    #expect(report.results.first?.verdict == .proved)
    #expect(
      report.statistics.queries
        == ShadowLeafShape.all(format.configuration, hostAddressBits: format.hostAddressBits)
        .count)
  }
}

/// Derivations that each forget one step of SEMANTICS §5.2; the lemma must refute every one.
enum ForgetfulDerivation: String, CaseIterable, Sendable, ShadowLeafDerivation {
  /// NX: the leaf never has XD, so fetches the guest or host forbid go through.
  case executeDisable = "forgets XD"
  /// Step 1: the parents' `role.access` is ignored; only the leaf's own bits count.
  case inheritedRights = "forgets inherited rights"
  /// Step 2: a clean guest leaf is mapped writable, so the guest never sees D set.
  case dirtyTracking = "forgets dirty tracking"
  /// Step 4: the host entries above the leaf are ignored.
  case hostParents = "forgets the host's upper levels"
  /// Step 5: a write-protected guest page table is mapped writable.
  case pageTable = "forgets page-table protection"
  /// Step 6: under SMAP a user page becomes a kernel page on a CR0.WP = 0 supervisor write.
  case kernelPageUnderSMAP = "makes kernel pages of user pages under SMAP"
  /// The frame: the host leaf's offset within a large host page is dropped.
  case largePageOffset = "drops the host page offset"

  func derive<D: BitVectorDomain>(
    _ d: D, _ shape: ShadowLeafShape, _ request: ShadowLeafRequest<D>
  ) -> D.Word {
    var r = request
    switch self {
    case .executeDisable:
      return d.masked(deriveShadowLeaf(d, shape, r), ~(1 << 63))
    case .inheritedRights:
      r.inherited = .all(d)
    case .dirtyTracking:
      r.guestLeaf = d.bitOr(r.guestLeaf, d.word(1 << 6))
      return d.bitOr(
        d.masked(deriveShadowLeaf(d, shape, r), ~(1 << 6)),
        d.masked(request.guestLeaf, 1 << 6))
    case .hostParents:
      r.hostInherited = .all(d)
    case .pageTable:
      r.pageTable = d.no
    case .kernelPageUnderSMAP:
      r.control.smap = d.no
    case .largePageOffset:
      let leaf = deriveShadowLeaf(d, shape, r)
      return d.masked(leaf, ~mask(20, 12) | (1 << 12 - 1))
    }
    return deriveShadowLeaf(d, shape, r)
  }
}

extension EntryLemmaTests {
  @Test(
    "A derivation that forgets a step of §5.2 fails the lemma, with a counterexample",
    arguments: ForgetfulDerivation.allCases, [formats[0], formats[1]])
  func forgetfulDerivationFails(derivation: ForgetfulDerivation, format: Format) throws {
    let report = try proveEntryLemmas(
      format.configuration, hostAddressBits: format.hostAddressBits, derivation: derivation)
    guard case .violated(let counterexample) = report.results.first?.verdict else {
      Issue.record("\(derivation.rawValue): \(String(describing: report.results.first))")
      return
    }
    #expect(counterexample.property == .entryLemmas)
    #expect(counterexample.summary.contains("derived shadow leaf"))
  }
}
