import Foundation
import TestSupport
import ISCSI
import Testing
import VHD

/// Multipath in user space: one tgtd listening on two portals (two ports of 127.0.0.1) to the
/// same LUN. Writers keep writing while one path is taken away (portal deleted, its
/// connections reset), comes back (found again by the background path check), and then the
/// other goes: no request fails or waits for the hold policy, the path count says what is
/// up, and every acknowledged block is on the LUN, read back by hash through the store and
/// from the backing file.
@Suite(.serialized, .enabled(if: TestTarget.available, "needs SWIFTSM_TEST_ISCSI (scripts/with-iscsi-target.sh)"))
struct ISCSIMultipathTests {
    static let block = 64 << 10

    /// Polls `condition` for up to `seconds`.
    private func eventually(_ seconds: Double, _ condition: () -> Bool) -> Bool {
        let end = Date().addingTimeInterval(seconds)
        while Date() < end {
            if condition() { return true }
            Thread.sleep(forTimeInterval: 0.05)
        }
        return condition()
    }

    @Test func requestsMoveToTheWorkingPathAndFailedPathsComeBack() throws {
        let t = try TestTarget.startPrivate(name: "multipath")
        defer { t.discard() }
        let second = try freePort()
        try t.script(["portal-add", t.state, "127.0.0.1:\(second)"])
        var config = t.target(hold: .soft, timeout: 5, extraPortals: [ISCSIPortal(host: "127.0.0.1", port: second)])
        config.sessionsPerPath = 2
        let device = try ISCSIDevice(target: config)
        defer { device.close() }
        #expect(device.pathCount.active == 2 && device.pathCount.total == 2)
        let store = ISCSIStore(device: device)

        let log = ISCSIOutageTests.Log()
        let stop = Stopper()
        let writers = 4
        let group = DispatchGroup()
        for w in 0..<writers {
            DispatchQueue.global().async(group: group) {
                var n = UInt64(w)
                while !stop.stopped {
                    let offset = (UInt64(w) * 256 + (n / UInt64(writers)) &* 31 % 256) * UInt64(Self.block)
                    let started = Date()
                    do {
                        try store.write(Pattern.bytes(Self.block, seed: 9, n: n), at: offset)
                        log.ack(offset, n, latency: Date().timeIntervalSince(started))
                    } catch {
                        log.fail(error)
                        return
                    }
                    n += UInt64(writers)
                }
            }
        }
        Thread.sleep(forTimeInterval: 0.5)
        // The second path goes away.
        try t.script(["portal-delete", t.state, "127.0.0.1:\(second)"])
        #expect(eventually(5) { device.pathCount.active == 1 }, "path count \(device.pathCount)")
        let during = log.writes
        Thread.sleep(forTimeInterval: 0.5)
        #expect(log.writes > during, "no write completed on the remaining path")
        // It comes back, and the background check puts it in use again.
        try t.script(["portal-add", t.state, "127.0.0.1:\(second)"])
        #expect(eventually(5) { device.pathCount.active == 2 }, "path count \(device.pathCount)")
        // Now the first path goes.
        try t.script(["portal-delete", t.state, "127.0.0.1:\(t.port)"])
        #expect(eventually(5) { device.pathCount.active == 1 }, "path count \(device.pathCount)")
        let later = log.writes
        Thread.sleep(forTimeInterval: 0.5)
        #expect(log.writes > later, "no write completed on the second path")
        stop.stop()
        group.wait()
        try store.sync()

        let (acked, errors, _) = log.snapshot
        #expect(errors.isEmpty, "\(errors)")
        #expect(device.heldOperations == 0, "requests waited although a path worked")
        for (offset, n) in acked {
            let want = SHA256.hex(Pattern.bytes(Self.block, seed: 9, n: n))
            #expect(SHA256.hex(try store.read(count: Self.block, at: offset)) == want, "block at \(offset)")
            #expect(SHA256.hex(try Pattern.fileBytes(t.backingFile(lun: 1), offset: offset, count: Self.block)) == want,
                    "backing file at \(offset)")
        }
    }

    @Test func aPortalDownAtStartIsRetriedInTheBackground() throws {
        let t = try TestTarget.startPrivate(name: "multipath-late")
        defer { t.discard() }
        let second = try freePort()
        let config = t.target(hold: .soft, timeout: 5, extraPortals: [ISCSIPortal(host: "127.0.0.1", port: second)])
        let device = try ISCSIDevice(target: config)
        defer { device.close() }
        #expect(device.pathCount.active == 1 && device.pathCount.total == 2)
        try t.script(["portal-add", t.state, "127.0.0.1:\(second)"])
        #expect(eventually(5) { device.pathCount.active == 2 }, "path count \(device.pathCount)")
        let store = ISCSIStore(device: device)
        let data = Pattern.bytes(1 << 20, seed: 10)
        try store.write(data, at: 0)
        #expect(try store.read(count: data.count, at: 0) == data)
    }
}
