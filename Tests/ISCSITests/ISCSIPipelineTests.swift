import Foundation
import TestSupport
import ISCSI
import Testing
import VHD

/// ISCSIStore's asynchronous reads and writes (`AsyncBlockStore`), which the data path uses for
/// blocks it knows: many in flight from one thread through the device's pipeline, read back by
/// hash through the pipeline and from the backing file; and a target crash under pipelined
/// writes, after which every write has ended without an error (the failed ones sent again the
/// blocking way, held through the outage) and every acknowledged block is on the LUN. Each test
/// runs its own target.
@Suite(.serialized, .enabled(if: TestTarget.available, "needs SWIFTSM_TEST_ISCSI (scripts/with-iscsi-target.sh)"))
struct ISCSIPipelineTests {
    static let block = 4096

    /// Starts writing `data` at `offset`, counted in `flight`; the data lives until the end.
    func startWrite(_ store: ISCSIStore, _ data: [UInt8], at offset: UInt64, _ flight: RequestFlight, acked: (@Sendable () -> Void)? = nil) {
        flight.enter()
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: data.count, alignment: 4096)
        buffer.copyMemory(from: data.withUnsafeBytes { $0 })
        let owned = TransferredBuffer(buffer)
        store.startWrite(UnsafeRawBufferPointer(buffer), at: offset) { error in
            owned.bytes.deallocate()
            if error == nil { acked?() }
            flight.leave(error)
        }
    }

    @Test func manyRequestsInFlightFromOneThreadReadBackExactly() throws {
        let t = try TestTarget.startPrivate(name: "pipeline")
        defer { t.discard() }
        let device = try ISCSIDevice(target: t.target(timeout: 5))
        defer { device.close() }
        let store = ISCSIStore(device: device)
        // The pipeline's sessions open in the background: the first requests go the blocking way.
        let flight = RequestFlight(limit: 64)
        var model = [UInt8](repeating: 0, count: 8 << 20)
        for round in 0..<4 {
            for i in 0..<512 {
                let slot = (i &* 7919 &+ round) % (model.count / Self.block)
                let data = Pattern.bytes(Self.block, seed: 11, n: UInt64(round * 512 + i))
                model.replaceSubrange(slot * Self.block..<(slot + 1) * Self.block, with: data)
                startWrite(store, data, at: UInt64(slot * Self.block), flight)
            }
            flight.wait()   // overlapping writes are ordered by waiting between rounds
        }
        // Requests of 64 KiB too, and one past what one command moves (the blocking way).
        let big = Pattern.bytes(store.commandBytes + Self.block, seed: 12)
        model.replaceSubrange(0..<big.count, with: big)
        startWrite(store, big, at: 0, flight)
        flight.wait()
        #expect(flight.failures.isEmpty, "\(flight.failures)")
        try store.sync()

        // Read back through the pipeline, 64 KiB at a time, all in flight together.
        let back = UnsafeMutableRawBufferPointer.allocate(byteCount: model.count, alignment: 4096)
        defer { back.deallocate() }
        let owned = TransferredBuffer(back)
        for offset in stride(from: 0, to: model.count, by: 64 << 10) {
            flight.enter()
            store.startRead(into: UnsafeMutableRawBufferPointer(rebasing: owned.bytes[offset..<offset + (64 << 10)]), at: UInt64(offset)) {
                flight.leave($0)
            }
        }
        flight.wait()
        #expect(flight.failures.isEmpty, "\(flight.failures)")
        #expect(SHA256.hex(Array(back)) == SHA256.hex(model))
        #expect(SHA256.hex(try Pattern.fileBytes(t.backingFile(lun: 1), offset: 0, count: model.count)) == SHA256.hex(model))
        let counts = device.pipelinedRequests
        #expect(counts.answered > 1000, "most requests went through the pipeline: \(counts)")
    }

    @Test func aTargetCrashUnderPipelinedWritesLosesNothingAcknowledged() throws {
        let t = try TestTarget.startPrivate(name: "pipeline-outage")
        defer { t.discard() }
        let device = try ISCSIDevice(target: t.target(hold: .hold(seconds: 60), timeout: 5))
        defer { device.close() }
        let store = ISCSIStore(device: device)
        let flight = RequestFlight(limit: 16)
        final class Acked: @unchecked Sendable {
            let lock = NSLock()
            var last: [UInt64: UInt64] = [:]
            var count = 0
        }
        let acked = Acked()
        let stop = Stopper()
        // One writer thread, 16 in flight, never two writes to one slot at once.
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            var n: UInt64 = 0
            while !stop.stopped {
                let offset = (n % 1024) * UInt64(Self.block)
                let k = n
                self.startWrite(store, Pattern.bytes(Self.block, seed: 13, n: k), at: offset, flight) {
                    acked.lock.withLock { acked.last[offset] = max(acked.last[offset] ?? 0, k); acked.count += 1 }
                }
                n += 1
                // Every 1024 writes, wait for all: a slot's next write starts after its last one ended.
                if n % 1024 == 0 { flight.wait() }
            }
            flight.wait()
            done.signal()
        }
        Thread.sleep(forTimeInterval: 1.0)
        let before = acked.lock.withLock { acked.count }
        try t.kill()
        Thread.sleep(forTimeInterval: 1.5)
        try t.start()
        Thread.sleep(forTimeInterval: 2.0)
        stop.stop()
        done.wait()
        try store.sync()

        #expect(flight.failures.isEmpty, "\(flight.failures)")
        let (last, count) = acked.lock.withLock { (acked.last, acked.count) }
        #expect(count > before, "writes went on after the restart")
        let counts = device.pipelinedRequests
        #expect(counts.answered > 0 && counts.fellBack > 0, "the crash sent some writes the blocking way: \(counts)")
        #expect(device.heldOperations > 0)
        let file = try Pattern.fileBytes(t.backingFile(lun: 1), offset: 0, count: 1024 * Self.block)
        var checked = 0
        for (offset, n) in last {
            let want = SHA256.hex(Pattern.bytes(Self.block, seed: 13, n: n))
            #expect(SHA256.hex(Array(file[Int(offset)..<Int(offset) + Self.block])) == want, "block at \(offset)")
            checked += 1
        }
        #expect(checked == last.count && checked > 100)
    }
}
