import Testing

@testable import Gate

/// The spellings of numbers, sizes and durations specs and `--time-budget` accept.
@Suite struct QuantityTests {
  @Test(arguments: [
    ("4096", Quantity.Parsed.value(4096)),
    ("0x1000", .value(0x1000)),
    ("0X7f00_0000_0000", .value(0x7F00_0000_0000)),
    ("0b101", .value(5)),
    ("1_000", .value(1000)),
    ("0xffff_ffff_ffff_ffff", .value(.max)),
    ("0x1_0000_0000_0000_0000", .tooWide),
    ("18446744073709551616", .tooWide),
    ("-1", .negative),
    ("-0x10", .negative),
    ("0x", .malformed),
    ("_1", .malformed),
    ("1__0", .malformed),
    ("1.5", .malformed),
    ("0b12", .malformed),
    ("twelve", .malformed),
  ])
  func integers(_ text: String, _ expected: Quantity.Parsed) {
    #expect(Quantity.parseInteger(text) == expected)
  }

  @Test(arguments: [
    ("4096", Quantity.Parsed.value(4096)),
    ("4 KiB", .value(4096)),
    ("2MiB", .value(0x20_0000)),
    ("1 GiB", .value(0x4000_0000)),
    ("3 TiB", .value(3 << 40)),
    ("512 B", .value(512)),
    ("0x10 KiB", .value(0x4000)),
    ("16777216 TiB", .tooWide),
    ("2 MB", .malformed),
    ("KiB", .malformed),
    ("-4 KiB", .negative),
  ])
  func sizes(_ text: String, _ expected: Quantity.Parsed) {
    #expect(Quantity.parseSize(text) == expected)
  }

  @Test(arguments: [
    ("500 ms", Duration.milliseconds(500)),
    ("30s", .seconds(30)),
    ("30", .seconds(30)),
    ("2 min", .seconds(120)),
    ("1h", .seconds(3600)),
    ("0 s", .zero),
  ])
  func durations(_ text: String, _ expected: Duration) {
    #expect(Quantity.parseDuration(text) == expected)
  }

  @Test(arguments: ["", "1.5 s", "-1 s", "10 days", "s", "9999999 h"])
  func notDurations(_ text: String) {
    #expect(Quantity.parseDuration(text) == nil)
  }

  @Test(arguments: [
    (Duration.milliseconds(250), "250 ms"), (.milliseconds(1250), "1.2 s"), (.seconds(3), "3 s"),
    (.seconds(120), "2 min"), (.seconds(125), "2 min 5 s"),
  ])
  func durationsForPeople(_ duration: Duration, _ text: String) {
    #expect(Quantity.describe(duration) == text)
  }

  @Test func sizesForPeople() {
    #expect(Quantity.describeSize(0x1000) == "4 KiB")
    #expect(Quantity.describeSize(0x30_0000) == "3 MiB")
    #expect(Quantity.describeSize(0x1800) == "6 KiB")
    #expect(Quantity.describeSize(100) == "100 bytes")
  }
}
