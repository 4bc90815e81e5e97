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
            #expect(try store.appliedMigrations() == ["v1-objects", "v2-object-log"])
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
        #expect(try reopened.appliedMigrations() == ["v1-objects", "v2-object-log"])
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

    /// Polls `body` for up to 10 s until it is true.
    private func eventually(_ body: () throws -> Bool) rethrows -> Bool {
        for _ in 0..<200 {
            if try body() { return true }
            usleep(50_000)
        }
        return false
    }

    @Test func twoDaemonsSharingOneDatabaseSeeEachOthersChanges() throws {
        let pg = try TestPostgres()
        defer { pg.stop() }
        let url = try pg.database()
        let a = try TestToolstack(nbd: true, store: { _ in try PostgresObjectStore(url: url) })
        defer { a.destroy() }
        let b = try TestToolstack(nbd: true, store: { _ in try PostgresObjectStore(url: url) })
        defer { b.destroy() }
        let ca = try a.client(), cb = try b.client()
        // One pool, a host each.
        #expect(try ca.call("pool.get_all") == (try cb.call("pool.get_all")))
        #expect(a.service.hostRef != b.service.hostRef)
        #expect(Set(try cb.call("host.get_all").arrayValue ?? []) == [.string(a.service.hostRef), .string(b.service.hostRef)])
        // Logging in on B did not log out A's sessions.
        _ = try ca.call("pool.get_all")

        let start = try cb.call("event.from", [.array(["vdi"]), "", .double(0)])
        let token = try #require(start[member: "token"])
        let sr = try a.createSR(ca)
        let vdi = try a.createVDI(ca, sr: sr, name: "made-on-A")
        // B sees the VDI A made at once (each call reads through), in its records and in its events.
        #expect((try? cb.call("VDI.get_name_label", [.string(vdi)])) == "made-on-A")
        #expect(try cb.call("SR.get_VDIs", [.string(sr)]).arrayValue?.contains(.string(vdi)) == true)
        var seen = false
        var from = token
        for _ in 0..<10 where !seen {
            let batch = try cb.call("event.from", [.array(["vdi"]), from, .double(2)])
            from = batch[member: "token"]!
            seen = (batch[member: "events"]?.arrayValue ?? []).contains { $0[member: "ref"] == .string(vdi) && $0[member: "operation"] == "add" }
        }
        #expect(seen, "event.from on B reports the VDI made on A")
        // A sees what B writes; writes on both sides keep each other's changes.
        _ = try cb.call("VDI.set_name_label", [.string(vdi), "renamed-on-B"])
        #expect((try? ca.call("VDI.get_name_label", [.string(vdi)])) == "renamed-on-B")
        _ = try ca.call("VDI.add_to_other_config", [.string(vdi), "from-a", "1"])
        _ = try cb.call("VDI.add_to_other_config", [.string(vdi), "from-b", "2"])
        let both = XMLRPCValue.struct([XMLRPCMember("from-a", "1"), XMLRPCMember("from-b", "2"), XMLRPCMember("purpose", "test")])
        #expect(eventually { (try? ca.call("VDI.get_other_config", [.string(vdi)])) == both })
        #expect(try cb.call("VDI.get_other_config", [.string(vdi)]) == both)
        // A key added on A is refused on B as a duplicate: B's write starts from A's.
        #expect(throws: APIFailure.self) { try cb.call("VDI.add_to_other_config", [.string(vdi), "from-a", "x"]) }
        // NBD in the pool: asked through B, get_nbd_info names A's server (A has the SR plugged),
        // and A's server takes the export name carrying B's session.
        let net = try cb.call("PIF.get_network", [try #require(try cb.call("PIF.get_all").arrayValue?.first)])
        _ = try cb.call("network.add_purpose", [net, "nbd"])
        let infos = try cb.call("VDI.get_nbd_info", [.string(vdi)]).arrayValue ?? []
        try #require(infos.count == 1)
        #expect(infos[0][member: "port"] == .string(String(try #require(a.service.nbdPort))))
        #expect(infos[0][member: "cert"] == .string(try a.service.serverCertificatePEM()))
        #expect(try cb.call("host.get_server_certificate", [.string(a.service.hostRef)]) == .string(try a.service.serverCertificatePEM()))
        let certs = b.root + "/nbdtls"
        try FileManager.default.createDirectory(atPath: certs, withIntermediateDirectories: true)
        try infos[0][member: "cert"]!.stringValue!.write(toFile: certs + "/ca-cert.pem", atomically: true, encoding: .utf8)
        let name = infos[0][member: "exportname"]!.stringValue!
        #expect(name.hasSuffix("session_id=\(cb.session!)"))
        let encoded = name.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~")))!
        let (status, out, err) = try Executables.run("/usr/bin/nbdinfo", ["--size", "nbds://127.0.0.1:\(a.service.nbdPort!)/\(encoded)?tls-certificates=\(certs)"])
        #expect(status == 0, "\(err)")
        #expect(out.trimmingCharacters(in: .whitespacesAndNewlines) == String(64 << 20))
        #expect(eventually { (try? ca.call("VDI.get_VBDs", [.string(vdi)]).arrayValue?.isEmpty) == true })
        // A cancel asked through B of a scan running on A: A kills it.
        let slowDir = a.root + "/slowsr"
        try FileManager.default.createDirectory(atPath: slowDir, withIntermediateDirectories: true)
        let slowSR = try ca.call("SR.create", [.string(a.service.hostRef), .struct([XMLRPCMember("path", .string(slowDir))]), "0", "slow", "",
                                               .string(try a.installSlowPlugin()), "user", false, .struct([])])
        let scan = try ca.call("Async.SR.scan", [slowSR])
        usleep(500_000)
        let t0 = Date()
        _ = try cb.call("task.cancel", [scan])
        #expect(eventually { (try? ca.call("task.get_status", [scan])) == "cancelled" })
        #expect(Date().timeIntervalSince(t0) < 2.5, "killed, not waited for")
        #expect(try cb.call("task.get_error_info", [scan]) == .array(["TASK_CANCELLED", scan]))
        // Deletions travel too.
        _ = try ca.call("VDI.destroy", [.string(vdi)])
        #expect(eventually { (try? cb.call("VDI.get_record", [.string(vdi)])) == nil })
    }
}
