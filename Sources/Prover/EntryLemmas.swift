/// The entry lemmas of SEMANTICS §5.2 (docs/prover.md): not implemented yet.
enum EntryLemmas {
  static func prove(settings: QuerySettings) -> PropertyVerdict {
    .skipped(reason: "entry lemmas are not implemented yet")
  }
}
