import Foundation
import Testing
@testable import Toolstack
import XenAPIWire

@Suite struct StoreTests {
    private func tempPath() -> String { NSTemporaryDirectory() + "store-\(UUID().uuidString).db" }

    @Test func recordsSurviveReopeningTheFile() throws {
        let path = tempPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        var vdi = ObjectRecord(DataModel.vdi, ["name_label": "disk", "virtual_size": .string("1073741824"),
                                               "snapshot_time": .dateTime("20261206T20:05:00Z")])
        vdi.setMap("sm_config", ["vhd-parent": "abc"])
        do {
            let db = try ObjectDatabase(store: try SQLiteObjectStore(path: path))
            try db.write { txn in txn.put(vdi) }
        }
        let store = try SQLiteObjectStore(path: path)
        #expect(try store.appliedMigrations() == ["v1-objects"])
        let db = try ObjectDatabase(store: store)
        let back = try db.read { try $0.get("VDI", vdi.ref) }
        #expect(back == vdi)
        #expect(back.map("sm_config") == ["vhd-parent": "abc"])
        #expect(back.fields["snapshot_time"] == .dateTime("20261206T20:05:00Z"))
        #expect(back.int("virtual_size") == 1 << 30)
    }

    @Test func aFailedTransactionChangesNothing() throws {
        let path = tempPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let db = try ObjectDatabase(store: try SQLiteObjectStore(path: path))
        let sr = ObjectRecord(DataModel.sr, ["name_label": "one"])
        try db.write { txn in txn.put(sr) }
        let token = db.currentToken
        #expect(throws: APIFailure.self) {
            try db.write { txn in
                try txn.update("SR", sr.ref) { $0.fields["name_label"] = "two" }
                txn.put(ObjectRecord(DataModel.vdi, ["SR": .string(sr.ref)]))
                throw APIFailure("OPERATION_NOT_ALLOWED", "test")
            }
        }
        #expect(db.read { $0.find("SR", sr.ref)?.string("name_label") } == "one")
        #expect(db.read { $0.all("VDI") }.isEmpty)
        #expect(db.currentToken == token)
        let reopened = try ObjectDatabase(store: try SQLiteObjectStore(path: path))
        #expect(reopened.read { $0.all("VDI") }.isEmpty)
    }

    @Test func eventsCarryAddModDelAfterAToken() throws {
        let path = tempPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let db = try ObjectDatabase(store: try SQLiteObjectStore(path: path))
        let token = db.currentToken
        let vdi = ObjectRecord(DataModel.vdi, ["name_label": "a"])
        try db.write { txn in txn.put(vdi) }
        try db.write { txn in try txn.update("VDI", vdi.ref) { $0.fields["name_label"] = "b" } }
        try db.write { txn in txn.delete("VDI", vdi.ref) }
        try db.write { txn in txn.put(ObjectRecord(DataModel.sr)) }
        let (events, newToken) = try #require(db.events(after: token, classes: ["vdi"], until: Date()))
        #expect(events.map(\.operation) == ["add", "mod", "del"])
        #expect(events[1].snapshot.string("name_label") == "b")
        #expect(newToken == token + 4)
        let none = try #require(db.events(after: newToken, classes: ["vdi"], until: Date().addingTimeInterval(0.2)))
        #expect(none.events.isEmpty)
    }

    @Test func passwordHashesVerifyOnlyTheirPassword() {
        let hash = PasswordHash.make("correct horse")
        #expect(hash.hasPrefix("$6$"))
        #expect(!hash.contains("correct"))
        #expect(PasswordHash.verify("correct horse", hash: hash))
        #expect(!PasswordHash.verify("correct horsE", hash: hash))
        #expect(!PasswordHash.verify("", hash: ""))
    }
}
