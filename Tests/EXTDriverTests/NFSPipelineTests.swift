import Foundation
import NFSDriver
import RemoteStorage
import Testing
import TestSupport
import VHD

/// `NFSStore`'s asynchronous reads and writes (`AsyncBlockStore`), which the data path uses for
/// blocks it knows: many RPCs in flight from one thread through the file's pipeline, read back
/// by hash through the pipeline and from the export's file; and a server restart under
/// pipelined writes, after which every write has ended without an error (the failed ones sent
/// again the blocking way, held through the outage) and every acknowledged block is in the file.
@Suite(.serialized) struct NFSPipelineTests {
    static let block = 4096
    static let blocks = 1024

    /// Waits (at most 10 s) until `store`'s pipeline has a connection up.
    static func waitForPipeline(_ store: NFSStore) {
        let deadline = Date().addingTimeInterval(10)
        while !store.startsAsynchronously && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
    }

    /// Starts writing `data` at `offset` through `store`'s pipeline, counted in `flight`.
    static func startWrite(_ store: NFSStore, _ data: [UInt8], at offset: UInt64, _ flight: RequestFlight,
                           acked: (@Sendable () -> Void)? = nil) {
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

    /// The file's first `blocks` blocks, written the blocking way with block `i` of `seed`, committed.
    static func fill(_ store: NFSStore, seed: Int) throws -> [UInt8] {
        var model: [UInt8] = []
        for i in 0..<blocks { model += NFSStoreTests.pattern(seed * 100_000 + i, count: block) }
        try model.withUnsafeBytes { try store.write($0, at: 0) }
        try store.sync()
        return model
    }

    @Test func manyRequestsInFlightFromOneThreadReadBackExactly() throws {
        let server = try NFSTestServer.require()
        let name = "pipeline-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: server.export + "/" + name) }
        let store = try NFSStoreTests.store(server, name)
        var model = try Self.fill(store, seed: 1)
        Self.waitForPipeline(store)
        #expect(store.startsAsynchronously)
        let flight = RequestFlight(limit: 64)
        for round in 0..<4 {
            for i in 0..<512 {
                let slot = (i &* 7919 &+ round) % Self.blocks
                let data = NFSStoreTests.pattern(round * 1000 + i, count: Self.block)
                model.replaceSubrange(slot * Self.block..<(slot + 1) * Self.block, with: data)
                Self.startWrite(store, data, at: UInt64(slot * Self.block), flight)
            }
            flight.wait()   // overlapping writes are ordered by waiting between rounds
        }
        // One write larger than an RPC carries: the store splits it.
        let big = NFSStoreTests.pattern(77, count: 1 << 20)
        model.replaceSubrange(0..<big.count, with: big)
        Self.startWrite(store, big, at: 0, flight)
        flight.wait()
        #expect(flight.failures.isEmpty, "\(flight.failures)")
        try store.sync()
        #expect(store.writesSentAgain == 0)

        // Read back through the pipeline, 64 KiB at a time and one 1 MiB read, all in flight together.
        let back = UnsafeMutableRawBufferPointer.allocate(byteCount: model.count, alignment: 4096)
        defer { back.deallocate() }
        let owned = TransferredBuffer(back)
        let step = 64 << 10
        for offset in stride(from: 1 << 20, to: model.count, by: step) {
            flight.enter()
            store.startRead(into: UnsafeMutableRawBufferPointer(rebasing: owned.bytes[offset..<offset + step]), at: UInt64(offset)) {
                flight.leave($0)
            }
        }
        flight.enter()
        store.startRead(into: UnsafeMutableRawBufferPointer(rebasing: owned.bytes[0..<(1 << 20)]), at: 0) { flight.leave($0) }
        flight.wait()
        #expect(flight.failures.isEmpty, "\(flight.failures)")
        #expect(SHA256.hex(Array(back)) == SHA256.hex(model))
        let file = try Data(contentsOf: URL(fileURLWithPath: server.export + "/" + name))
        #expect(SHA256.hex([UInt8](file)) == SHA256.hex(model))
        let counts = store.pipelineCounts
        #expect(counts.answered > 2000 && counts.fellBack == 0, "every request went through the pipeline: \(counts)")
    }

    @Test func aServerRestartUnderPipelinedWritesLosesNothingAcknowledged() throws {
        let root = "/tmp/npt-" + UUID().uuidString.prefix(8).lowercased()
        try FileManager.default.createDirectory(atPath: root + "/export", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let server = try NFSTestServer.startPrivate(root: root)
        defer { try? server.stop() }
        let store = try NFSStoreTests.store(server, "f", hold: .hold(seconds: 60))
        _ = try Self.fill(store, seed: 2)
        Self.waitForPipeline(store)
        #expect(store.startsAsynchronously)
        final class Acked: @unchecked Sendable {
            let lock = NSLock()
            var last: [UInt64: Int] = [:]
            var count = 0
        }
        let acked = Acked()
        let flight = RequestFlight(limit: 16)
        let stop = Stopper()
        // One writer thread, 16 in flight, never two writes to one block at once.
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            var n = 0
            while !stop.stopped {
                let offset = UInt64((n % Self.blocks) * Self.block)
                let k = n
                Self.startWrite(store, NFSStoreTests.pattern(3_000_000 + k, count: Self.block), at: offset, flight) {
                    acked.lock.withLock { acked.last[offset] = max(acked.last[offset] ?? 0, k); acked.count += 1 }
                }
                n += 1
                // Every round of the file, wait for all: a block's next write starts after its last one ended.
                if n % Self.blocks == 0 { flight.wait() }
            }
            flight.wait()
            done.signal()
        }
        Thread.sleep(forTimeInterval: 1.0)
        let before = acked.lock.withLock { acked.count }
        try server.stop()
        // NFS-Ganesha's write verifier is its start time in seconds: down for longer than one.
        Thread.sleep(forTimeInterval: 1.5)
        try server.start()
        Thread.sleep(forTimeInterval: 2.0)
        stop.stop()
        done.wait()
        try store.sync()

        #expect(flight.failures.isEmpty, "\(flight.failures)")
        let (last, count) = acked.lock.withLock { (acked.last, acked.count) }
        #expect(count > before, "writes went on after the restart")
        let counts = store.pipelineCounts
        #expect(counts.answered > 0, "writes went through the pipeline: \(counts)")
        #expect(store.operationsHeld > 0, "writes sent the blocking way waited for the server")
        let file = [UInt8](try Data(contentsOf: URL(fileURLWithPath: server.export + "/f")))
        #expect(file.count == Self.blocks * Self.block)
        var wrong: [UInt64] = []
        for (offset, n) in last where file.count == Self.blocks * Self.block {
            let want = NFSStoreTests.pattern(3_000_000 + n, count: Self.block)
            if Array(file[Int(offset)..<Int(offset) + Self.block]) != want { wrong.append(offset) }
        }
        #expect(wrong.isEmpty, "blocks without their last acknowledged write: \(wrong.prefix(10))")
        #expect(last.count > 100)
    }
}

