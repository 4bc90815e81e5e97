import CNFS
import Foundation
import SMCore
import VHD

/// A file on an NFS export as a `BlockStore`: large reads and writes go to libnfs whole (it
/// splits them into the server's READ/WRITE size and keeps those RPCs in flight together),
/// writes are UNSTABLE and `sync` is a COMMIT, so a FLUSH or FUA from the data path makes the
/// server put them on stable storage. Calls from several threads (reads and writes) run on
/// connections of their own. A server that stops answering is waited for as the mount's hold
/// policy says; one that restarted is found out by its write verifier at the next COMMIT, and
/// the writes it may have dropped are sent again.
public final class NFSStore: OutageReportingStore, ConcurrentReadStore, ConcurrentWriteStore, @unchecked Sendable {
    /// The export.
    public let mount: NFSMount
    /// The file's path within the export.
    public let path: String
    /// Whether it was opened for writing.
    public let writable: Bool
    private let id: UInt64
    private let lock = NSLock()
    private var knownSize: UInt64
    /// Writes not yet committed, kept until a COMMIT covers them (sent again when the server's
    /// verifier shows it restarted since the last COMMIT). Numbered in the order they
    /// finished, so that a COMMIT forgets only what it covers, while other threads write and
    /// commit too.
    private var uncommitted: [Uncommitted] = []
    private var nextSeq: UInt64 = 0
    private var uncommittedBytes = 0
    /// The server's write verifier at the last COMMIT (or at open, for a writable store).
    private var verifier: UInt64?
    /// Writers pass it shared; sending writes again after a restart passes it alone.
    private let gate = WriteGate()
    private var resent: UInt64 = 0
    /// The asynchronous way to the file, made by the first caller that asks for it (the data path).
    private var pipelineValue: NFSPipeline?

    /// A write the server may not have on stable storage yet.
    private struct Uncommitted {
        let seq: UInt64
        let offset: UInt64
        let bytes: [UInt8]
    }
    /// Most bytes kept uncommitted before a write commits them itself.
    static let uncommittedLimit = 64 << 20

    /// Opens the file at `path` (it must exist).
    public init(mount: NFSMount, path: String, writable: Bool) throws {
        self.mount = mount
        self.path = path
        self.writable = writable
        id = mount.newStoreID()
        knownSize = 0
        let size = try mount.perform("open \(path)") { [id] c in
            let fh = try c.handle(store: id, path: path, writable: writable)
            return try c.with("fstat") { ctx -> UInt64 in
                var st = nfs_stat_64()
                try c.check(nfs_fstat64(ctx, fh, &st), "fstat", path)
                return st.nfs_size
            }
        }
        knownSize = size
        if writable { verifier = try commit() }
    }

    deinit {
        pipelineValue?.close()
        mount.closeHandles(store: id)
    }

    /// How long the server has not answered and how many operations wait for it.
    public var outage: (seconds: Double, waiting: Int)? {
        mount.holding.map { (Date().timeIntervalSince($0.since), $0.operations) }
    }

    /// Operations of the mount that have waited for the server.
    public var operationsHeld: UInt64 { mount.heldOperations }

    /// Writes sent again because the server restarted before a COMMIT covered them.
    public var writesSentAgain: UInt64 { lock.withLock { resent } }

    /// The file's size as this store has seen and made it.
    public var size: UInt64 { lock.withLock { knownSize } }

    /// Reads the whole buffer (short of the end: `VHDError.shortRead`).
    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws {
        guard buffer.count > 0 else { return }
        guard offset + UInt64(buffer.count) <= size else { throw VHDError.shortRead(path: path, offset: offset, count: buffer.count) }
        try mount.perform("read \(path)") { [id, path, writable] c in
            let fh = try c.handle(store: id, path: path, writable: writable)
            var done = 0
            while done < buffer.count {
                let n = try c.with("read") { ctx -> Int32 in
                    let rc = nfs_pread(ctx, fh, offset + UInt64(done), UInt64(buffer.count - done), buffer.baseAddress! + done)
                    try c.check(rc, "read", path)
                    return rc
                }
                if n == 0 { throw VHDError.shortRead(path: path, offset: offset + UInt64(done), count: buffer.count - done) }
                done += Int(n)
            }
        }
    }

    /// Writes the whole buffer (UNSTABLE: durable after `sync`).
    public func write(_ buffer: UnsafeRawBufferPointer, at offset: UInt64) throws {
        guard buffer.count > 0 else { return }
        guard writable else { throw VHDError.io(path: path, operation: "write", errno: EBADF) }
        let full = try gate.shared {
            do {
                try mount.perform("write \(path)") { [id, path] c in
                    let fh = try c.handle(store: id, path: path, writable: true)
                    try Self.write(c, fh, path, buffer, at: offset)
                }
            } catch let e as NFSError where e.errno != nil && e.errno != ENOSPC {
                throw fullExport(e, needing: buffer.count)
            }
            return keepUncommitted(buffer, at: offset)
        }
        if full { try sync() }
    }

    /// Keeps a write the server acknowledged until a COMMIT covers it: whether the store holds
    /// enough uncommitted bytes that the writer should commit them now.
    private func keepUncommitted(_ buffer: UnsafeRawBufferPointer, at offset: UInt64) -> Bool {
        lock.withLock {
            knownSize = max(knownSize, offset + UInt64(buffer.count))
            nextSeq += 1
            uncommitted.append(Uncommitted(seq: nextSeq, offset: offset, bytes: [UInt8](buffer)))
            uncommittedBytes += buffer.count
            return uncommittedBytes >= Self.uncommittedLimit
        }
    }

    /// `error` as ENOSPC when the export has no room for `bytes` (libnfs 4.0's synchronous
    /// pwrite reports NFS3ERR_NOSPC as EFAULT with no text), else `error` itself.
    private func fullExport(_ error: NFSError, needing bytes: Int) -> NFSError {
        let full = (try? mount.statistics(path)).map { $0.available < UInt64(bytes) } ?? false
        return full ? .failed(operation: "write", path: path, errno: ENOSPC, reason: "no space left on the export") : error
    }

    /// Sends `writes` again, as they were made.
    private func rewrite(_ writes: [Uncommitted]) throws {
        try mount.perform("write \(path)") { [id, path] c in
            let fh = try c.handle(store: id, path: path, writable: true)
            for w in writes { try w.bytes.withUnsafeBytes { try Self.write(c, fh, path, $0, at: w.offset) } }
        }
    }

    /// WRITEs of all of `buffer` at `offset` on connection `c`.
    private static func write(_ c: NFSConnection, _ fh: OpaquePointer, _ path: String, _ buffer: UnsafeRawBufferPointer, at offset: UInt64) throws {
        var done = 0
        while done < buffer.count {
            let n = try c.with("write") { ctx -> Int32 in
                let rc = nfs_pwrite(ctx, fh, offset + UInt64(done), UInt64(buffer.count - done),
                                    UnsafeMutableRawPointer(mutating: buffer.baseAddress! + done))
                try c.check(rc, "write", path)
                return rc
            }
            if n == 0 { throw VHDError.io(path: path, operation: "write", errno: EIO) }
            done += Int(n)
        }
    }

    /// SETATTR of the size.
    public func resize(to newSize: UInt64) throws {
        guard writable else { throw VHDError.io(path: path, operation: "truncate", errno: EBADF) }
        try mount.perform("truncate \(path)") { [id, path] c in
            let fh = try c.handle(store: id, path: path, writable: true)
            try c.with("truncate") { ctx in try c.check(nfs_ftruncate(ctx, fh, newSize), "truncate", path) }
        }
        lock.withLock { knownSize = newSize }
    }

    /// COMMIT: every write goes to stable storage. When the server's verifier differs from the
    /// last COMMIT's, it restarted in between and may have dropped UNSTABLE writes it had
    /// acknowledged: every uncommitted write is sent again (no other writer meanwhile, so
    /// none lands before an older one) and committed, until one COMMIT answers with the
    /// verifier the writes were sent under.
    public func sync() throws {
        guard writable else { return }
        let last = lock.withLock { uncommitted.last?.seq }
        var current = try commit()
        if current != lock.withLock({ verifier }) {
            try gate.exclusive {
                while true {
                    let writes = lock.withLock { uncommitted }
                    try rewrite(writes)
                    lock.withLock { resent += UInt64(writes.count) }
                    let after = try commit()
                    if after == current {
                        lock.withLock {
                            verifier = after
                            forget(upTo: writes.last?.seq)
                        }
                        return
                    }
                    current = after
                }
            }
            return
        }
        lock.withLock { forget(upTo: last) }
    }

    /// Drops the uncommitted writes up to number `seq` (a COMMIT covered them); writes that
    /// finished later stay for the next COMMIT. Called under `lock`.
    private func forget(upTo seq: UInt64?) {
        guard let seq else { return }
        uncommitted.removeAll { $0.seq <= seq }
        uncommittedBytes = uncommitted.reduce(0) { $0 + $1.bytes.count }
    }

    /// One COMMIT of the whole file: the server's write verifier.
    private func commit() throws -> UInt64 {
        try mount.perform("commit \(path)") { [id, path] c in
            let fh = try c.handle(store: id, path: path, writable: true)
            return try NFSCommit.verifier(c, fh, path: path)
        }
    }
}

/// Reads and writes start on the file's pipeline (`NFSPipeline`), many RPCs in flight with no
/// thread waiting, once it has a connection up; a request it cannot finish in full is sent again
/// the blocking way on a thread of its own, which holds through outages as the mount says.
extension NFSStore: AsyncBlockStore {
    /// The pipeline (made, and its connections opened in the background, on first use).
    private var pipeline: NFSPipeline {
        lock.withLock {
            if let p = pipelineValue { return p }
            let p = NFSPipeline(target: mount.target, path: path, writable: writable, serverTransfer: mount.transferSize)
            pipelineValue = p
            return p
        }
    }

    /// Whether the file's pipeline has a connection up.
    public var startsAsynchronously: Bool { pipeline.isUp }

    /// Requests the pipeline did in full, and requests it handed back to the blocking way.
    public var pipelineCounts: (answered: UInt64, fellBack: UInt64) {
        lock.withLock { pipelineValue }?.counts ?? (0, 0)
    }

    /// Starts a read of `buffer.count` bytes at `offset`.
    public func startRead(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64, completion: @escaping @Sendable (Error?) -> Void) {
        let b = TransferredBuffer(buffer)
        let blocking: @Sendable () throws -> Void = { try self.read(into: b.bytes, at: offset) }
        guard buffer.count > 0, offset + UInt64(buffer.count) <= size, pipeline.isUp else {
            return runDetached(blocking, completion: completion)
        }
        start(b, at: offset, isWrite: false, completion: completion)
    }

    /// Starts a write of `buffer` at `offset` (UNSTABLE, kept until a COMMIT covers it, as `write`).
    public func startWrite(_ buffer: UnsafeRawBufferPointer, at offset: UInt64, completion: @escaping @Sendable (Error?) -> Void) {
        let b = TransferredBuffer(buffer)
        let blocking: @Sendable () throws -> Void = { try self.write(UnsafeRawBufferPointer(b.bytes), at: offset) }
        // Outside the gate (sending writes again after a restart holds it alone): the blocking way waits for it.
        guard buffer.count > 0, writable, pipeline.isUp, gate.tryEnter() else { return runDetached(blocking, completion: completion) }
        start(b, at: offset, isWrite: true) { error in
            let full = error == nil && self.keepUncommitted(UnsafeRawBufferPointer(b.bytes), at: offset)
            self.gate.leave()
            if error != nil {
                runDetached(blocking, completion: completion)
            } else if full {
                runDetached({ try self.sync() }, completion: completion)
            } else {
                completion(nil)
            }
        }
    }

    /// Sends `buffer` at `offset` on the pipeline in requests of at most its transfer size,
    /// ended together; a read that did not finish in full is read again the blocking way
    /// (a write's caller does that itself).
    private func start(_ buffer: TransferredBuffer, at offset: UInt64, isWrite: Bool, completion: @escaping @Sendable (Error?) -> Void) {
        let pipeline = self.pipeline
        let step = pipeline.maxTransfer
        let count = buffer.bytes.count
        let failure = VHDError.io(path: path, operation: isWrite ? "write" : "read", errno: EIO)
        let countdown = PartCountdown(parts: (count + step - 1) / step) { error in
            if error != nil && !isWrite {
                runDetached({ try self.read(into: buffer.bytes, at: offset) }, completion: completion)
            } else {
                completion(error)
            }
        }
        for at in stride(from: 0, to: count, by: step) {
            let n = min(step, count - at)
            pipeline.submit(.init(offset: offset + UInt64(at), length: n, buffer: buffer.bytes.baseAddress! + at, isWrite: isWrite)) { ok in
                countdown.end(ok ? nil : failure)
            }
        }
    }
}
