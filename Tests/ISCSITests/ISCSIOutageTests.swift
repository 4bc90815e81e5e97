import Foundation
import TestSupport
import ISCSI
import Testing
import VHD

/// A target that crashes (tgtd killed) and comes back under writing clients: with a hold
/// policy every write completes and every acknowledged block is on the LUN afterwards, read
/// back by hash through the store and from the backing file; with the soft policy the writer
/// gets the typed error (141) and the next request after the target returns succeeds. Each
/// test runs its own target.
@Suite(.serialized, .enabled(if: TestTarget.available, "needs SWIFTSM_TEST_ISCSI (scripts/with-iscsi-target.sh)"))
struct ISCSIOutageTests {
    /// What the writers did: for each offset the number of the last block acknowledged there.
    final class Log: @unchecked Sendable {
        private let lock = NSLock()
        private var acked: [UInt64: UInt64] = [:]
        private var errors: [String] = []
        private var maxLatency = 0.0
        private var count = 0

        func ack(_ offset: UInt64, _ n: UInt64, latency: Double) {
            lock.withLock { acked[offset] = n; maxLatency = max(maxLatency, latency); count += 1 }
        }
        /// A flush that took `latency` seconds (held through the outage like a write).
        func flushed(latency: Double) { lock.withLock { maxLatency = max(maxLatency, latency) } }
        /// Writes acknowledged so far.
        var writes: Int { lock.withLock { count } }
        func fail(_ e: Error) { lock.withLock { errors.append("\(e)") } }
        var snapshot: (acked: [UInt64: UInt64], errors: [String], maxLatency: Double) {
            lock.withLock { (acked, errors, maxLatency) }
        }
    }

    static let block = 64 << 10

    @Test func holdPolicyRidesThroughATargetCrashAndLosesNothingAcknowledged() throws {
        let t = try TestTarget.startPrivate(name: "outage-hold")
        defer { t.discard() }
        let device = try ISCSIDevice(target: t.target(hold: .hold(seconds: 60), timeout: 5))
        defer { device.close() }
        let store = ISCSIStore(device: device)
        let log = Log()
        let stop = Stopper()
        let writers = 3
        let group = DispatchGroup()
        for w in 0..<writers {
            DispatchQueue.global().async(group: group) {
                var n = UInt64(w)
                while !stop.stopped {
                    // 512 slots of 64 KiB per writer, visited in a scattered order.
                    let slot = (n / UInt64(writers)) &* 7919 % 512
                    let offset = (UInt64(w) * 512 + slot) * UInt64(Self.block)
                    let started = Date()
                    do {
                        try store.write(Pattern.bytes(Self.block, seed: 7, n: n), at: offset)
                        log.ack(offset, n, latency: Date().timeIntervalSince(started))
                    } catch {
                        log.fail(error)
                        return
                    }
                    if n % 16 == UInt64(w) {
                        // Timed too: under a loaded disk the writers spend most of their time in
                        // SYNCHRONIZE CACHE, so the crash may find every one of them flushing.
                        let flushing = Date()
                        try? store.sync()
                        log.flushed(latency: Date().timeIntervalSince(flushing))
                    }
                    n += UInt64(writers)
                }
            }
        }
        Thread.sleep(forTimeInterval: 1.0)
        let before = log.writes
        try t.kill()
        // A tgtd blocked in a flush on a loaded disk dies only when the flush returns: the
        // outage is timed from when the writers first wait, not from the kill.
        let deadline = Date().addingTimeInterval(30)
        while store.outage == nil && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        Thread.sleep(forTimeInterval: 1.5)
        #expect(store.outage != nil, "the writers should be waiting for the target")
        try t.start()
        Thread.sleep(forTimeInterval: 1.5)
        stop.stop()
        group.wait()
        try store.sync()

        let (acked, errors, maxLatency) = log.snapshot
        #expect(errors.isEmpty, "\(errors)")
        #expect(log.writes > before, "no write completed after the restart")
        #expect(device.heldOperations > 0 && device.reconnections > 0)
        #expect(maxLatency >= 1.0, "some write or flush should have waited through the outage")
        #expect(store.outage == nil)
        var checked = 0
        for (offset, n) in acked {
            let want = SHA256.hex(Pattern.bytes(Self.block, seed: 7, n: n))
            #expect(SHA256.hex(try store.read(count: Self.block, at: offset)) == want, "block at \(offset)")
            #expect(SHA256.hex(try Pattern.fileBytes(t.backingFile(lun: 1), offset: offset, count: Self.block)) == want,
                    "backing file at \(offset)")
            checked += 1
        }
        #expect(checked == acked.count && checked > 0)
    }

    @Test func softPolicyFailsWithTheTypedErrorAndRecoversWhenTheTargetReturns() throws {
        let t = try TestTarget.startPrivate(name: "outage-soft")
        defer { t.discard() }
        let device = try ISCSIDevice(target: t.target(hold: .soft, timeout: 3))
        defer { device.close() }
        let store = ISCSIStore(device: device)
        let data = Pattern.bytes(1 << 20, seed: 8)
        try store.write(data, at: 0)
        try t.kill()
        let started = Date()
        do {
            try store.write(data, at: 1 << 20)
            Issue.record("a write to a dead target succeeded")
        } catch let e as ISCSIError {
            guard case .transport = e else { Issue.record("\(e)"); return }
            #expect(e.smapiCode == 141)
        }
        #expect(Date().timeIntervalSince(started) < 10)
        try t.start()
        try store.write(data, at: 1 << 20)
        try store.sync()
        #expect(try store.read(count: 1 << 20, at: 0) == data)
        #expect(try store.read(count: 1 << 20, at: 1 << 20) == data)
        #expect(SHA256.hex(try Pattern.fileBytes(t.backingFile(lun: 1), offset: 1 << 20, count: 1 << 20)) == SHA256.hex(data))
    }
}

extension ISCSIOutageTests {
    @Test func aHungTargetTimesOutAndIsHeldUntilItAnswersAgain() throws {
        let t = try TestTarget.startPrivate(name: "outage-hung")
        defer { t.discard() }
        let device = try ISCSIDevice(target: t.target(hold: .hold(seconds: 60), timeout: 2))
        defer { device.close() }
        let store = ISCSIStore(device: device)
        let first = Pattern.bytes(1 << 20, seed: 12, n: 0)
        try store.write(first, at: 0)
        let pidText = try String(contentsOfFile: t.state + "/tgtd.pid", encoding: .utf8)
        let pid = try #require(pid_t(pidText.trimmingCharacters(in: .whitespacesAndNewlines)))
        #expect(Glibc.kill(pid, SIGSTOP) == 0)
        let second = Pattern.bytes(1 << 20, seed: 12, n: 1)
        let done = Stopper()
        let failure = Log()
        let writer = Thread {
            do { try store.write(second, at: 1 << 20) } catch { failure.fail(error) }
            done.stop()
        }
        writer.start()
        Thread.sleep(forTimeInterval: 4)
        #expect(!done.stopped, "a write to a stopped target completed")
        #expect(store.outage != nil)
        #expect(Glibc.kill(pid, SIGCONT) == 0)
        let end = Date().addingTimeInterval(30)
        while !done.stopped && Date() < end { Thread.sleep(forTimeInterval: 0.05) }
        #expect(done.stopped, "the write did not complete after the target answered again")
        #expect(failure.snapshot.errors.isEmpty, "\(failure.snapshot.errors)")
        try store.sync()
        #expect(try store.read(count: 1 << 20, at: 0) == first)
        #expect(try store.read(count: 1 << 20, at: 1 << 20) == second)
        #expect(SHA256.hex(try Pattern.fileBytes(t.backingFile(lun: 1), offset: 1 << 20, count: 1 << 20)) == SHA256.hex(second))
        #expect(device.heldOperations > 0)
    }
}
