import FakeXapi
import Foundation
import SMCore
import Testing
import VHD

/// The data path of an NFS SR through a server outage longer than `timeo × retrans`: a guest
/// (libnbd's Python binding, writing 64 KiB blocks and flushing every 16) keeps writing while
/// the server is stopped and started again. By default every request is held and completes
/// (the data path's stats say it holds), and every acknowledged block is on the server
/// afterwards, read back through NBD and from the VHD file itself; with `options=soft` the
/// guest sees EIO, as with the kernel's soft mount. Each test runs its own server.
@Suite(.serialized) struct NFSOutageTests {
    /// An NFS SR on a private server with a short soft window (`nfs-timeout` 1 s, one retry) and
    /// `options` added; one 64 MiB VDI, active read-write. Returns the SR, the server and the VDI.
    func activeVDI(root: String, options: String? = nil) throws -> (TestSR, NFSTestServer, String) {
        let server = try NFSTestServer.startPrivate(root: root)
        let sr = try TestSR(mode: .nfs, nfsServer: server)
        if var record = sr.fake.sr(uuid: sr.srUUID) {
            record.otherConfig["nfs-timeout"] = "10"
            record.otherConfig["nfs-retrans"] = "1"
            sr.fake.updateSR(record)
        }
        let edit: (inout RequestDocument) -> Void = { doc in
            if let options { doc.editDeviceConfig { m in
                if let i = m.firstIndex(where: { $0.name == "options" }) { m[i].value = .string((m[i].value.stringValue ?? "") + "," + options) }
            } }
        }
        try sr.value(try sr.call("sr_create", edit))
        try sr.value(try sr.call("sr_attach", edit))
        let v = try sr.createVDI(size: 64 << 20)
        try sr.value(try sr.call("vdi_attach", vdi: v) { doc in edit(&doc); doc.setArgs(["true"]) })
        try sr.value(try sr.call("vdi_activate", vdi: v) { doc in edit(&doc); doc.setArgs(["true"]) })
        return (sr, server, v)
    }

    @Test func theDataPathHoldsThroughAnOutageAndLosesNothing() throws {
        let root = "/tmp/nfo-" + UUID().uuidString.prefix(8).lowercased()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let (sr, server, v) = try activeVDI(root: root)
        defer { sr.cleanup(); try? server.stop() }
        var held: DatapathStats?
        let report = try NBDGuest.run(sr, v, seconds: 12) {
            Thread.sleep(forTimeInterval: 2)
            try server.stop()
            // Longer than timeo × retrans (2 s): a soft mount would have failed the guest by now.
            Thread.sleep(forTimeInterval: 6)
            held = try NBDGuest.stats(sr, v)
            try server.start()
        }
        #expect(report.errors == 0 && report.mismatches == 0, "the guest saw \(report.errors) errors, \(report.mismatches) wrong blocks")
        #expect(report.writes > 100 && report.acked.count > 10, "\(report.writes) writes")
        #expect(report.maxlat >= 4, "a write waited for the server: \(report.maxlat) s")
        let during = try #require(held)
        #expect((during.holdingSeconds ?? 0) > 3 && during.holdingOperations >= 1, "stats while held: \(during)")
        #expect(try NBDGuest.stats(sr, v).holdingSeconds == nil, "the hold ends when the server is back")

        // Every acknowledged block is in the VHD on the server's disk.
        try sr.value(try sr.call("vdi_deactivate", vdi: v))
        try NBDGuest.expectAcknowledgedBlocks(report, in: sr, v)
    }

    /// A guest with 16 writes in flight (16 KiB blocks, each written once, in a scattered order,
    /// never flushed) until its data path dies: it prints which blocks were acknowledged.
    static let busyGuest = #"""
import nbd, sys, json
sock, export, blocks = sys.argv[1], sys.argv[2], int(sys.argv[3])
h = nbd.NBD(); h.connect_uri(f"nbd+unix:///{export}?socket={sock}")
blk = 16 << 10; acked = {}; inflight = {}; n = 0; errors = 0
def block(k): return bytes([(k * 7 + i) % 253 for i in range(256)]) * (blk // 256)
bufs = {}
try:
    while n < blocks or inflight:
        while n < blocks and len(inflight) < 16:
            off = (n * 2654435761 % blocks) * blk
            bufs[n] = block(n)
            inflight[h.aio_pwrite(bufs[n], off)] = (off, n); n += 1
        h.poll(-1)
        for c in list(inflight):
            if h.aio_command_completed(c):
                off, k = inflight.pop(c); acked[str(off)] = k; bufs.pop(k, None)
except Exception as e:
    errors += 1
print(json.dumps({"writes": n, "errors": errors, "mismatches": 0, "maxlat": 0, "acked": acked}))
"""#

    /// The data path killed (SIGKILL) under a guest with 16 writes in flight, none flushed (an
    /// NFS leaf's writes are planned: their data goes out from I/O threads and their bits are
    /// set on the chain thread before the answer): the VHD on the server checks clean and holds
    /// every block the guest got acknowledged; a new activation serves it.
    @Test func aKilledDataPathKeepsEveryAcknowledgedWrite() throws {
        let root = "/tmp/nfk-" + UUID().uuidString.prefix(8).lowercased()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let (sr, server, v) = try activeVDI(root: root)
        defer { sr.cleanup(); try? server.stop() }
        let pid = try #require(sr.datapathPIDs().first)
        let dir = DatapathDirectory(run: RunDirectory(root: sr.runDir), sr: sr.srUUID, vdi: v)
        let script = sr.root + "/busy.py", out = sr.root + "/busy.json"
        try Self.busyGuest.write(toFile: script, atomically: true, encoding: .utf8)
        let blocks = 4096
        let guest = try Spawned(["/usr/bin/python3", script, dir.nbdSocket, v, String(blocks)], output: out)
        // Killed once the guest is well under way (by the data path's count of its writes), not
        // after a fixed time: on a quiet machine it finishes all of them in well under a second.
        let deadline = Date().addingTimeInterval(30)
        while ((try? NBDGuest.stats(sr, v).writes) ?? 0) < 256 && Date() < deadline { Thread.sleep(forTimeInterval: 0.005) }
        kill(pid, SIGKILL)
        #expect(guest.wait() == 0)
        let report = try JSONDecoder().decode(NBDGuest.Report.self, from: Data(try String(contentsOfFile: out, encoding: .utf8).utf8))
        #expect(report.errors == 1 && report.acked.count > 16 && report.acked.count < blocks,
                "killed halfway: \(report.acked.count) of \(blocks) acknowledged, \(report.errors) errors")
        #expect(sr.treeProblems().isEmpty, "\(sr.treeProblems())")
        let chain = try VHDChain(path: sr.path(v), provider: sr.provider)
        var wrong: [String] = []
        for (offset, k) in report.acked {
            let expected = (0..<(16 << 10)).map { UInt8((k * 7 + $0 % 256) % 253) }
            if try chain.read(count: 16 << 10, at: UInt64(offset)!) != expected { wrong.append(offset) }
        }
        #expect(wrong.isEmpty, "acknowledged blocks missing: \(wrong.prefix(10))")
        // The dead data path's files do not stop a new one.
        try sr.value(try sr.call("vdi_activate", vdi: v) { $0.setArgs(["true"]) })
        try Shell.run("/usr/bin/nbdinfo", ["--size", dir.uri(export: v)])
        try sr.value(try sr.call("vdi_deactivate", vdi: v))
    }

    @Test func softFailsTheGuestAfterTimeoTimesRetrans() throws {
        let root = "/tmp/nfo-" + UUID().uuidString.prefix(8).lowercased()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let (sr, server, v) = try activeVDI(root: root, options: "soft")
        defer { sr.cleanup(); try? server.stop() }
        let report = try NBDGuest.run(sr, v, seconds: 10) {
            Thread.sleep(forTimeInterval: 2)
            try server.stop()
            Thread.sleep(forTimeInterval: 6)
            try server.start()
        }
        #expect(report.errors > 0, "soft: the guest sees EIO during the outage")
        #expect(report.mismatches == 0, "what was acknowledged is there")
    }
}
