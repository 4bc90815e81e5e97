import Foundation
import SMCore
import Testing

/// Status files outlive collector versions: one lacking newer fields still reads, with defaults.
@Suite struct GCStatusFileTests {
    @Test func anOlderFileReadsWithDefaults() throws {
        var status = GCStatus()
        status.coalesced = 3
        status.skippedForSpace = ["a": "not enough free space"]
        let current = try JSONEncoder().encode(status)
        #expect(try GCStatus.decoded(from: current) == status)
        // The same file as a collector before the space check wrote it.
        var fields = try #require(try JSONSerialization.jsonObject(with: current) as? [String: Any])
        fields.removeValue(forKey: "skippedForSpace")
        let older = try GCStatus.decoded(from: JSONSerialization.data(withJSONObject: fields))
        #expect(older.coalesced == 3 && older.skippedForSpace.isEmpty)
        // Not a status at all: an error, not a made-up status.
        #expect(throws: (any Error).self) { try GCStatus.decoded(from: Data("[1, 2]".utf8)) }
        #expect(throws: (any Error).self) { try GCStatus.decoded(from: Data("{\"coalesced\": \"x\"}".utf8)) }
    }
}
