import SMCore
import Testing

/// The collector's byte counts keep small merges visible and large ones short.
@Suite struct ByteCountTests {
    @Test func unitsAndRounding() {
        #expect(ByteCount.describe(0) == "0 B")
        #expect(ByteCount.describe(512) == "512 B")
        #expect(ByteCount.describe(4096) == "4.0 KiB")
        #expect(ByteCount.describe(2 << 20) == "2.0 MiB")
        #expect(ByteCount.describe(3 << 29) == "1.5 GiB")
        #expect(ByteCount.describe((2 << 20) + (1 << 19) / 10) == "2.0 MiB")
        #expect(ByteCount.describe(UInt64(3) << 40) == "3.0 TiB")
    }
}
