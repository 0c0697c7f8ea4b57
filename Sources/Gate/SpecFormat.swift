import FastMMU
import Machine

/// A spec file, read and checked field by field: one scenario (a guest, its nested or shadow
/// translation, the host memory it may use), the checks to run on it, and the verdict they must
/// come to. The format is docs/spec-format.md; ``SpecParser`` reads it and ``StateBuilder``
/// turns it into a ``BuiltSpec``.
///
/// Every element keeps the ``Origin`` of its source, so that rules checked after parsing
/// (overlaps, backing, placement) still report `file:line:column` and the field.
public struct Spec: Sendable {
  /// The file it was read from, as named.
  public var file: String
  /// The spec's name, unique within a run.
  public var name: String
  /// What the spec is about, for people.
  public var description: String
  var processor: ProcessorSpec
  var guest: GuestSpec
  var nested: NestedSpec
  var guestMappings: [GuestMapping]
  var hostMappings: [HostMapping]
  var rawEntries: [RawEntry]
  var hostRanges: [Located<AddressRange>]
  var shadow: ShadowSpec?
  /// The properties to prove, in the order given.
  public var properties: [Property]
  /// Limits for each proof.
  public var proofBudget: ProofBudget
  /// The fuzz campaign, if any.
  public var fuzz: FuzzPlan?
  /// The verdict the checks must come to.
  public var expectation: Expectation
  /// Where each top-level section starts, by name.
  var origins: [String: Origin]

  /// The origin of top-level section `name`, or of the document when it is absent.
  func origin(_ name: String) -> Origin {
    origins[name] ?? Origin(position: nil, field: name)
  }
}

/// A value and where it came from.
struct Located<Value: Sendable>: Sendable {
  /// The value.
  var value: Value
  /// Its source.
  var origin: Origin
}

/// The field origins of one list element (a mapping, a raw entry): the element's own, and each
/// field's.
struct Origins: Sendable {
  /// The element's origin.
  var item: Origin
  /// Each field's origin, by field name.
  var fields: [String: Origin] = [:]

  /// The origin of field `name`, or the element's when the field was not given.
  subscript(name: String) -> Origin { fields[name] ?? item }
}

/// Processor capabilities (`processor:`).
struct ProcessorSpec: Sendable {
  var vendor: Vendor?
  var physicalAddressBits: Int
  var gigabytePages: Bool
}

/// The guest's paging mode, as a person names it.
enum GuestPaging: String, CaseIterable, Sendable {
  case fourLevel = "4-level"
  case fiveLevel = "5-level"
  case off

  /// Paging levels: 4, 5, or 0 with paging off.
  var levels: Int {
    switch self {
    case .fourLevel: 4
    case .fiveLevel: 5
    case .off: 0
    }
  }
}

/// The guest's control state (`guest:`).
struct GuestSpec: Sendable {
  var paging: GuestPaging
  var cr0: UInt64?
  var cr4: UInt64?
  var efer: UInt64?
  var rflags: UInt64
  var pkru: UInt64
  var pkrs: UInt64
  var pcid: UInt64
  var tableArea: UInt64?
  var origins: Origins
}

/// The nested dimension (`nested:`).
enum NestedSpec: Sendable {
  case none
  case ept(EPTSpec)
  case npt(NPTSpec)

  /// The number of nested levels; 0 without nested paging.
  var levels: Int {
    switch self {
    case .none: 0
    case .ept(let ept): ept.levels
    case .npt(let npt): npt.levels
    }
  }

  /// Where the nested tables go, if the spec says.
  var tableArea: UInt64? {
    switch self {
    case .none: nil
    case .ept(let ept): ept.tableArea
    case .npt(let npt): npt.tableArea
    }
  }

  /// The field origins of the section.
  var origins: Origins? {
    switch self {
    case .none: nil
    case .ept(let ept): ept.origins
    case .npt(let npt): npt.origins
    }
  }
}

/// Intel EPT (`nested: { kind: ept, ... }`).
struct EPTSpec: Sendable {
  var levels: Int
  var accessedDirty: Bool
  var executeOnly: Bool
  var gigabytePages: Bool
  var modeBasedExecute: Bool
  var physicalAddressBits: Int
  var pagingStructureType: EPTMemoryType
  var tableArea: UInt64?
  var origins: Origins
}

/// AMD NPT (`nested: { kind: npt, ... }`).
struct NPTSpec: Sendable {
  var levels: Int
  var hostCR4: UInt64
  var hostEFER: UInt64
  var physicalAddressBits: Int
  var tableArea: UInt64?
  var origins: Origins
}

/// EPT memory types (SEMANTICS §2.2), for leaves and for the EPTP.
enum EPTMemoryType: String, CaseIterable, Sendable {
  case uc, wc, wt, wp, wb

  /// The encoding in bits 5:3 of a leaf, or 2:0 of the EPTP.
  var encoding: UInt64 {
    switch self {
    case .uc: 0
    case .wc: 1
    case .wt: 4
    case .wp: 5
    case .wb: 6
    }
  }
}

/// The sizes of a page a leaf maps.
enum PageSize: UInt64, CaseIterable, Sendable {
  case small = 0x1000
  case large = 0x20_0000
  case huge = 0x4000_0000

  /// The level of the leaf: 1, 2 or 3.
  var level: Int {
    switch self {
    case .small: 1
    case .large: 2
    case .huge: 3
    }
  }

  /// `4 KiB`, `2 MiB`, `1 GiB`.
  var name: String { Quantity.describeSize(rawValue) }
}

/// A right a mapping grants, by name.
enum Right: String, CaseIterable, Sendable {
  case read, write, user, exec
  case userExec = "user-exec"
}

/// A guest mapping (`guest-mappings:`): guest virtual to guest physical, in the guest's tables.
struct GuestMapping: Sendable {
  var gva: UInt64
  var gpa: UInt64
  var size: UInt64
  var page: PageSize
  var rights: Set<Right>
  var accessed: Bool
  var dirty: Bool
  var global: Bool
  var key: UInt64
  var backed: Bool?
  var origins: Origins
}

/// A host mapping (`host-mappings:`): guest physical to host physical, in the EPT or NPT tables.
struct HostMapping: Sendable {
  var gpa: UInt64
  var hpa: UInt64
  var size: UInt64
  var page: PageSize
  var rights: Set<Right>
  var accessed: Bool
  var dirty: Bool
  var memoryType: EPTMemoryType
  var origins: Origins
}

/// A shadow mapping (`shadow: { mappings: }`): guest virtual to host physical, in the shadow
/// tables the hardware walks.
struct ShadowMapping: Sendable {
  var gva: UInt64
  var hpa: UInt64
  var size: UInt64
  var page: PageSize
  var rights: Set<Right>
  var accessed: Bool
  var dirty: Bool
  var global: Bool
  var key: UInt64
  var origins: Origins
}

/// Which tables a raw entry is written into.
enum TableKind: String, CaseIterable, Sendable {
  case guest, nested, shadow

  /// The field that names the address an entry of these tables translates.
  var addressField: String { self == .nested ? "gpa" : "gva" }
}

/// A table a raw entry points to: the root, or the table at `level` on the walk of `address`.
enum TableReference: Sendable {
  case root
  case table(address: UInt64, level: Int)
}

/// A raw entry (`raw-entries:`): one 64-bit entry written as given, for what mappings cannot say
/// (reserved bits, aliases, self-maps).
struct RawEntry: Sendable {
  var table: TableKind
  var address: UInt64
  var level: Int
  var value: UInt64
  var pointsTo: TableReference?
  var origins: Origins
}

/// The shadow (`shadow:`): given raw, or built by the fast MMU.
enum ShadowSpec: Sendable {
  case raw(RawShadow)
  case fastMMU(Located<ShadowRecipe>)
}

/// A shadow given as mappings (and raw entries) with the hardware's control registers.
struct RawShadow: Sendable {
  var mappings: [ShadowMapping]
  var tableArea: UInt64?
  var cr0: UInt64?
  var cr4: UInt64?
  var efer: UInt64?
  var unsync: [Located<UnsyncTable>]
  var origins: Origins
}

/// A guest page table named as out of sync.
enum UnsyncTable: Sendable {
  /// The table at this guest physical address.
  case address(UInt64)
  /// The table at `level` on the guest walk of `gva`.
  case table(gva: UInt64, level: Int)
}

/// How the fast MMU builds a shadow: the mode, its options, and the operations to apply to the
/// spec's state first (`shadow: { built-by: fast-mmu, ... }`).
public struct ShadowRecipe: Sendable {
  /// The fast MMU's mode: ``MMUMode/shadow`` or ``MMUMode/paravirtual``.
  public var mode: MMUMode
  /// What a guest write to a write-protected level-1 table does (shadow mode); `nil` for the
  /// fast MMU's default.
  public var writePolicy: ShadowWritePolicy?
  /// The operations, in the trace vocabulary, applied in order.
  public var operations: [TraceOperation]

  /// Makes a recipe.
  public init(mode: MMUMode, writePolicy: ShadowWritePolicy? = nil, operations: [TraceOperation]) {
    self.mode = mode
    self.writePolicy = writePolicy
    self.operations = operations
  }
}

/// A property the prover can be asked to prove of a state (issue 3; SEMANTICS §5.5).
public enum Property: String, CaseIterable, Hashable, Sendable {
  /// I1–I3: whatever the shadow permits, guest-plus-host permits, to the same frame and offset.
  case soundness
  /// I4: shadow present ⇒ guest A on the path; shadow writable ⇒ guest leaf D.
  case accessedDirty = "accessed-dirty"
  /// I5: no writable shadow leaf maps a host frame backing a synced guest page table.
  case pageTableProtection = "page-table-protection"
  /// Every successful translation, nested or shadow, lands in the host ranges.
  case isolation
  /// I9: where the composition faults, the fault the guest sees is the reference walk's.
  case faultClassification = "fault-classification"
  /// §5.2: the rule deriving a shadow entry never grants more than the composition, over all
  /// entry values.
  case entryLemmas = "entry-lemmas"

  /// Whether the property is about a shadow, so that a spec asking for it must have one.
  public var needsShadow: Bool {
    switch self {
    case .soundness, .accessedDirty, .pageTableProtection, .faultClassification: true
    case .isolation, .entryLemmas: false
    }
  }
}

/// Limits for one proof (`proof-budget:`); `nil` leaves the prover's default.
public struct ProofBudget: Hashable, Sendable {
  /// Wall-clock limit per property.
  public var time: Duration?
  /// Z3 resource limit per query: deterministic, unlike time.
  public var resourceLimit: UInt64?

  /// Makes a budget.
  public init(time: Duration? = nil, resourceLimit: UInt64? = nil) {
    self.time = time
    self.resourceLimit = resourceLimit
  }
}

/// A fuzz campaign (`fuzz:`): each mode fuzzed from the spec's state against the oracle.
public struct FuzzPlan: Sendable {
  /// The fast MMU's modes to fuzz, in order; one check each.
  public var modes: [MMUMode]
  /// The budget of each campaign.
  public var budget: FuzzBudget
}

/// The budget of one fuzz campaign.
public struct FuzzBudget: Hashable, Sendable {
  /// The seed: the same seed gives the same operations.
  public var seed: UInt64
  /// Operations to run; the campaign holds when all ran without a divergence.
  public var operations: UInt64
  /// Wall-clock limit; running out first is undecided.
  public var time: Duration?

  /// Makes a budget.
  public init(seed: UInt64, operations: UInt64, time: Duration? = nil) {
    self.seed = seed
    self.operations = operations
    self.time = time
  }
}

/// The verdict a spec's checks must come to (`expect:`).
public enum Expectation: Hashable, Sendable {
  /// Every check holds.
  case holds
  /// The named checks come out violated; every other check holds.
  case violated([String])
}
