import Foundation
import Testing
@testable import Toolstack
import ToolstackPostgres
import XenAPIWire

@Suite(.serialized) struct PostgresStoreTests {
    @Test func theSameProtocolOnARealServer() throws {
        let pg = try TestPostgres()
        defer { pg.stop() }
        let url = try pg.database()
        var vdi = ObjectRecord(DataModel.vdi, ["name_label": "disk", "virtual_size": .string("1073741824")])
        vdi.setMap("sm_config", ["vhd-parent": "abc"])
        do {
            let store = try PostgresObjectStore(url: url)
            defer { store.close() }
            #expect(try store.appliedMigrations() == ["v1-objects"])
            let db = try ObjectDatabase(store: store)
            try db.write { txn in txn.put(vdi) }
            // A failed transaction leaves the server untouched.
            #expect(throws: APIFailure.self) {
                try db.write { txn in
                    txn.delete("VDI", vdi.ref)
                    throw APIFailure("OPERATION_NOT_ALLOWED")
                }
            }
            // The store refuses what SQL refuses: a second object of a class with the same uuid.
            let twin = ObjectRecord(DataModel.vdi, uuid: vdi.uuid)
            #expect(throws: (any Error).self) { try store.commit(upserts: [twin], deletions: []) }
        }
        let reopened = try PostgresObjectStore(url: url)
        defer { reopened.close() }
        #expect(try reopened.appliedMigrations() == ["v1-objects"])
        let back = try reopened.loadAll()
        #expect(back == [vdi])
        #expect(back.first?.map("sm_config") == ["vhd-parent": "abc"])
    }

    @Test func toolstackdOnPostgresKeepsStorageRecordsAcrossARestart() throws {
        let pg = try TestPostgres()
        defer { pg.stop() }
        let url = try pg.database()
        let first = try TestToolstack(store: { _ in try PostgresObjectStore(url: url) })
        let c = try first.client()
        let sr = try first.createSR(c)
        let vdi = try first.createVDI(c, sr: sr, name: "on-postgres")
        let snap = try c.call("VDI.snapshot", [.string(vdi), .struct([])]).stringValue!
        first.stop()
        let second = try TestToolstack(root: first.root, store: { _ in try PostgresObjectStore(url: url) })
        defer { second.destroy() }
        let c2 = try second.client()
        #expect(try c2.call("VDI.get_name_label", [.string(vdi)]) == "on-postgres")
        #expect(try c2.call("VDI.get_snapshot_of", [.string(snap)]) == .string(vdi))
        #expect(try c2.call("SR.get_VDIs", [.string(sr)]).arrayValue?.count == 3)
        _ = try c2.call("VDI.destroy", [.string(snap)])
        #expect(throws: APIFailure.self) { try c2.call("VDI.get_record", [.string(snap)]) }
    }
}
