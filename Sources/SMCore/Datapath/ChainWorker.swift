import Foundation
import NIOCore
import Synchronization
import NIOPosix
import VHD

/// The one thread that touches the VHD chain (`VHDChain` is not thread-safe). Requests from every
/// connection queue here in arrival order; control operations (pause, unpause, close) run
/// between two requests. While paused the chain is closed and requests wait, in order, for the
/// unpause that reopens the chain (possibly from a new leaf), so nothing is lost or reordered.
/// READs are planned on the chain thread (`ReadPlan`): small ones the page cache holds are copied
/// there at once, the others' preads run on a small pool of I/O threads, several at once; pause,
/// unpause and close wait for those reads before touching the chain.
/// READs of blocks the `ReadMap` knows skip the queue: planned on the event loop, read there from
/// the page cache, or on the I/O threads when the disk must be waited for. Plain WRITEs into
/// blocks the map knows as wholly present in the leaf are pwritten by the event loop itself
/// (`writeFast`; see `ReadMap` for why that is safe); every other write takes the queue. A
/// pwrite the kernel holds up (dirty-page throttling) would stall every connection on the event
/// loop, and the control socket with them, so after a slow one, writes take the chain thread
/// for a while (`stallBackoff`). Other small plain WRITEs run through the engine on the event
/// loop itself when the chain thread is idle (`writeInline`; the chain is the event loop's for
/// that write, `busy`), which saves the two thread hops that are most of their cost.
public final class ChainWorker: @unchecked Sendable {
    /// What a job produced: a result, or a read plan for the I/O threads.
    enum Outcome {
        case result(NBDCommandResult)
        case read(ReadPlan, headerRoom: Int)
        case write(PlannedWrite)
    }

    /// A planned WRITE whose data an I/O thread has sent (or failed to), waiting for the chain
    /// thread to make it visible and answer it.
    struct WrittenData {
        let job: Job
        let plan: PlannedWrite
        let error: Error?
    }

    /// The bitmaps that make a batch of planned WRITEs visible, sent on the leaf store's
    /// pipeline (or failed to), waiting for the chain thread to answer the batch.
    struct WrittenBitmaps {
        let batch: [WrittenData]
        let bitmaps: [VHDImage.PlannedBitmap]
        let error: Error?
    }

    /// What the chain thread finishes next of the planned WRITEs.
    enum Finishing {
        case data([WrittenData])
        case bitmaps(WrittenBitmaps)
    }

    /// One queued request.
    struct Job {
        let kind: DatapathRequestKind
        let bytes: UInt64
        let queued: UInt64
        let body: @Sendable (VHDChain) throws -> Outcome
        let completion: @Sendable (NBDCommandResult) -> Void
        /// A planned WRITE's planning, which may run while bitmaps are being sent (it writes
        /// no bitmap); other requests wait for them.
        var planned = false
    }

    /// Threads running planned reads.
    static let ioThreads = 8

    /// Why a control operation failed.
    public enum Failure: Error, CustomStringConvertible {
        /// The worker was closed.
        case closed
        /// Reopening the chain failed.
        case reopen(String)
        /// Flushing before the pause failed (the chain is closed all the same).
        case flush(String)

        /// A one-line explanation.
        public var description: String {
            switch self {
            case .closed: return "datapath closed"
            case let .reopen(why): return "cannot reopen the chain: \(why)"
            case let .flush(why): return "flush failed: \(why)"
            }
        }
    }

    enum State { case running, paused, closed }

    /// Whether the leaf is opened writable.
    public let writable: Bool
    private let condition = NSCondition()
    // Guarded by `condition`.
    private var jobs = CircularBuffer<Job>(initialCapacity: 64)
    private var controls: [() -> Void] = []
    private var state = State.running
    /// The container the chain's volumes are opened through (another one after a live
    /// migration's switch: `unpause(container:leaf:)`).
    public var container: any VolumeContainer { condition.withLock { containerValue } }
    // Guarded by `condition`.
    private var containerValue: any VolumeContainer
    /// A live migration's mirror, while one runs: every change the chain thread makes is made
    /// on it too, and the fast paths (which bypass the chain thread) stay closed meanwhile.
    public let mirrors = MirrorSlot()
    private var leafVolume: String
    private var size: UInt64
    private var stats = DatapathStats()
    private var finished = false
    private var readsInFlight = 0
    /// Planned WRITEs whose data is being sent or waits in `writtenData`.
    private var writesInFlight = 0
    /// Planned WRITEs whose data is sent, for the chain thread to finish.
    private var writtenData: [WrittenData] = []
    /// Whether bitmaps of planned WRITEs are being sent on the leaf store's pipeline (one batch
    /// at a time, so two writes of one bitmap are never in flight together).
    private var bitmapsInFlight = false
    /// Bitmaps sent, for the chain thread to answer their writes.
    private var writtenBitmaps: [WrittenBitmaps] = []
    /// Whether WRITEs into the leaf send their data from I/O threads (`PlannedWrite`): its
    /// store takes several writers at once and is not a local file.
    private var leafPlansWrites = false
    /// Whether the chain is in use: the chain thread runs a job or control, or an event loop a
    /// write (`writeInline`). Neither starts while it is set.
    private var busy = false
    /// WRITEs run by an event loop (`writeInline`).
    private var inlineWrites: UInt64 = 0
    private let ioPool = NIOThreadPool(numberOfThreads: ChainWorker.ioThreads)
    /// Where known blocks read from, for READs that skip the chain thread.
    let readMap = ReadMap()
    /// The VDI's changed-block tracking (nil when it has no CBT log or the leaf is read-only):
    /// opened with the chain, closed cleanly when the chain is paused or closed.
    private var tracker: CBTTracker? {
        get { trackerLock.withLock { trackerValue } }
        set { trackerLock.withLock { trackerValue = newValue } }
    }
    private let trackerLock = NSLock()
    // Guarded by `trackerLock`; changed only by controls on the chain thread, with the read map closed.
    private var trackerValue: CBTTracker?
    // Only touched on the worker thread (and in init, before it starts).
    private var chain: VHDChain?
    /// The leaf's store when it reports server outages (read under `condition`).
    private var outageReporter: (any OutageReportingStore)?
    /// The footer uuids of the open chain's images, leaf first; empty while paused or with a
    /// raw parent (under `condition`).
    private var layers: [String] = []

    /// Takes what the worker needs to know of a newly opened chain's leaf store (under `condition`).
    private func noteLeafStore(_ chain: VHDChain) {
        let store = chain.leaf.store
        outageReporter = store as? any OutageReportingStore
        layers = chain.rawParent == nil ? chain.images.map { $0.footer.uuid.description } : []
        leafPlansWrites = chain.leaf.writable && store is any ConcurrentWriteStore && !(store is any DescriptorStore)
    }
    private var thread: Thread?

    /// Opens the chain of volume `leaf` of `container` (leaf writable unless `writable` is false)
    /// and starts the thread; a fast write slower than `stallThreshold` ns (plus 1 ns a byte)
    /// counts as held up.
    public init(container: any VolumeContainer, leaf: String, writable: Bool,
                stallThreshold: UInt64 = ChainWorker.defaultStallThreshold) throws {
        self.writable = writable
        self.stallThreshold = stallThreshold
        self.containerValue = container
        self.leafVolume = leaf
        let chain = try Self.openChain(container, leaf, writable: writable)
        self.chain = chain
        self.size = chain.virtualSize
        trackerValue = try Self.openTracker(container, leaf, writable: writable)
        stats.leaf = leaf
        stats.readOnly = !writable
        stats.size = size
        readMap.open(chain)
        noteLeafStore(chain)
        ioPool.start()
        let t = Thread { [self] in loop() }
        t.name = "swiftsm-chain"
        thread = t
        t.start()
    }

    /// The chain of volume `leaf` through the container.
    static func openChain(_ container: any VolumeContainer, _ leaf: String, writable: Bool) throws -> VHDChain {
        try VHDChain(path: container.path(of: leaf), provider: container.provider, writable: writable)
    }

    /// The tracking of the VDI whose leaf is volume `leaf`, when it has a CBT log and is written.
    static func openTracker(_ container: any VolumeContainer, _ leaf: String, writable: Bool) throws -> CBTTracker? {
        guard writable, let vdi = container.naming.vdi(ofVolume: leaf) else { return nil }
        return try CBTTracker.open(CBTLogs(container: container), vdi: vdi)
    }

    /// Marks `[offset, offset + length)` changed in the VDI's CBT log, if it has one; called before
    /// a WRITE, WRITE_ZEROES or TRIM runs (so before its reply).
    func markChanged(offset: UInt64, length: UInt64) {
        tracker?.mark(offset: offset, length: length)
    }

    /// Writes the CBT bitmap pages changed since the last flush (at a client FLUSH).
    func persistChanges() throws { try tracker?.persist() }

    /// Ends tracking cleanly (a pause or close): bitmap on disk, log consistent.
    private func closeTracker() throws {
        guard let t = tracker else { return }
        tracker = nil
        try t.close()
    }

    /// Whether the VDI's writes are tracked (tests and stats).
    public var tracksChanges: Bool { tracker != nil }

    /// Virtual size of the disk as last opened.
    public var virtualSize: UInt64 { condition.withLock { size } }

    /// Whether the chain is paused.
    public var isPaused: Bool { condition.withLock { state == .paused } }

    /// A copy of the counters.
    public func statistics() -> DatapathStats {
        condition.withLock {
            var s = stats
            s.queued = jobs.count
            s.paused = state == .paused
            s.size = size
            s.leaf = leafVolume
            s.layers = layers
            let fast = readMap.snapshot()
            s.requests += fast.reads + fast.writes + fast.errors
            s.reads += fast.reads
            s.bytesRead += fast.bytes
            s.writes += fast.writes
            s.bytesWritten += fast.writeBytes
            s.errors += fast.errors
            s.fastWrites = fast.writes
            s.fastWriteStalls = fastWritesStalled.load(ordering: .relaxed)
            s.mixedReads = fast.mixedReads
            s.mixedWrites = fast.mixedWrites
            s.inlineWrites = inlineWrites
            s.latencyTotalMicros += fast.latencyTotal
            s.latencyMaxMicros = max(s.latencyMaxMicros, fast.latencyMax)
            s.latencyMeanMicros = s.requests > 0 ? s.latencyTotalMicros / s.requests : 0
            if let mirror = mirrors.current?.status {
                s.mirrorTarget = mirror.target
                s.mirrorBytes = mirror.bytes
                s.mirrorFailure = mirror.failure
            }
            if let reporter = outageReporter {
                let outage = reporter.outage
                s.holdingSeconds = outage?.seconds
                s.holdingOperations = outage?.waiting ?? 0
                s.heldOperations = reporter.operationsHeld
                if let paths = reporter.paths { s.activePaths = paths.active; s.totalPaths = paths.total }
            }
            return s
        }
    }

    /// WRITEs an event loop ran through the engine itself (`writeInline`).
    var inlineWriteCount: UInt64 { condition.withLock { inlineWrites } }

    /// Counts a request the connection refused without running it (an error reply).
    public func noteRejected() {
        condition.withLock { stats.requests += 1; stats.errors += 1 }
    }

    /// Counts a connection opening (`true`) or closing.
    public func noteConnection(opened: Bool) {
        condition.withLock {
            if opened { stats.connections += 1; stats.connectionsTotal += 1 } else { stats.connections -= 1 }
        }
    }

    /// Queues a request; `completion` is called on the chain thread (or at once when closed).
    public func submit(_ kind: DatapathRequestKind, bytes: UInt64,
                       _ body: @escaping @Sendable (VHDChain) throws -> NBDCommandResult,
                       completion: @escaping @Sendable (NBDCommandResult) -> Void) {
        enqueue(Job(kind: kind, bytes: bytes, queued: DispatchTime.now().uptimeNanoseconds,
                    body: { .result(try body($0)) }, completion: completion))
    }

    /// Queues a READ of `length` bytes at `offset` into a buffer with `headerRoom` bytes in front:
    /// planned on the chain thread, read on an I/O thread (or read directly when it cannot be planned).
    public func submitRead(offset: UInt64, length: Int, headerRoom: Int, completion: @escaping @Sendable (NBDCommandResult) -> Void) {
        enqueue(Job(kind: .read, bytes: UInt64(length), queued: DispatchTime.now().uptimeNanoseconds, body: { chain in
            let plan = ReadPlan.make(chain, offset: offset, length: length)
            self.readMap.learn(chain, offset: offset, length: length)
            guard let plan else { return .result(try ChainIO.read(chain, offset: offset, length: length, headerRoom: headerRoom)) }
            // Small and in the page cache: copied here at once, rather than a hop to an I/O thread.
            if length <= Self.chainCopyLimit, let data = Self.executeCached(plan, headerRoom: headerRoom) {
                return .result(data)
            }
            return .read(plan, headerRoom: headerRoom)
        }, completion: completion))
    }

    /// Queues a request that writes `[offset, offset+length)` (WRITE, WRITE_ZEROES): while it is
    /// pending READs overlapping it take the queue too, and its blocks leave the read map before
    /// it is answered.
    /// After a WRITE the map brings its blocks up to date (on the chain thread, the write done,
    /// before the reply): a mixed block's sector map takes the bits the write set, and a block
    /// the write made wholly present in the leaf takes fast writes from then on. After any other
    /// write, or a failed one, its blocks are forgotten; a failed write also makes the leaf read
    /// its bitmaps again from the file (the engine's copies may be ahead of what it wrote).
    public func submitWrite(_ kind: DatapathRequestKind, offset: UInt64, length: UInt64,
                            _ body: @escaping @Sendable (VHDChain) throws -> NBDCommandResult,
                            completion: @escaping @Sendable (NBDCommandResult) -> Void) {
        let ticket = readMap.writeQueued(offset: offset, length: length)
        let map = readMap
        let refresh = kind == .write
        submit(kind, bytes: length, { chain in
            self.markChanged(offset: offset, length: length)
            let result: NBDCommandResult
            do {
                result = try body(chain)
            } catch {
                chain.leaf.dropCaches()
                throw error
            }
            if refresh { map.refresh(chain, offset: offset, length: Int(length)) }
            return result
        }) { result in
            var refreshed = false
            if refresh, case .done = result { refreshed = true }
            map.writeDone(ticket: ticket, offset: offset, length: length, refreshed: refreshed)
            completion(result)
        }
    }

    /// Queues a plain WRITE (no FUA) of `payload` at `offset`, as `submitWrite` does, planned
    /// (`PlannedWrite`) when the leaf's store takes several writers: the chain thread allocates
    /// what it needs and goes on with the next request while an I/O thread sends the data;
    /// the chain thread then sets its bitmap bits and it is answered.
    public func submitPlannedWrite(_ payload: ByteBuffer, offset: UInt64, completion: @escaping @Sendable (NBDCommandResult) -> Void) {
        let length = UInt64(payload.readableBytes)
        let ticket = readMap.writeQueued(offset: offset, length: length)
        let map = readMap
        var job = Job(kind: .write, bytes: length, queued: DispatchTime.now().uptimeNanoseconds, body: { chain in
            self.markChanged(offset: offset, length: length)
            do {
                if let plan = try PlannedWrite.make(chain, payload, offset: offset) { return .write(plan) }
                let result = try ChainIO.write(chain, payload, offset: offset, fua: false)
                map.refresh(chain, offset: offset, length: Int(length))
                return .result(result)
            } catch {
                chain.leaf.dropCaches()
                throw error
            }
        }, completion: { result in
            var refreshed = false
            if case .done = result { refreshed = true }
            map.writeDone(ticket: ticket, offset: offset, length: length, refreshed: refreshed)
            completion(result)
        })
        // Only a write that will be planned may run while bitmaps are in flight: an unaligned one
        // goes through the engine, which writes bitmaps itself. (The leaf's store takes planned
        // writes: bitmaps are only sent for planned writes.)
        job.planned = length > 0 && offset % 512 == 0 && length % 512 == 0
        enqueue(job)
    }

    /// Whether plain WRITEs are better planned (`submitPlannedWrite`) than run through the engine
    /// in one piece.
    public var plansWrites: Bool { mirrors.current == nil && condition.withLock { leafPlansWrites } }

    /// Makes the planned WRITEs of `batch` whose data was sent visible in the leaf (each block's
    /// bitmap written once for all of them) and answers every one (on the chain thread). When
    /// the leaf's store has a pipeline up, the bitmaps go out on it and the chain thread goes on;
    /// the batch is answered when they are written (`finishBitmaps`).
    private func finishWrites(_ batch: [WrittenData]) {
        let sent = batch.filter { $0.error == nil }
        guard !sent.isEmpty else { return answer(batch, nil) }
        guard let c = chain, sent.allSatisfy({ $0.plan.image === c.leaf }) else {
            return answer(batch, VHDError.invalidArgument("the chain changed under planned writes"))
        }
        let pieces = sent.flatMap { $0.plan.pieces }
        do {
            if let store = c.leaf.store as? any AsyncBlockStore, store.startsAsynchronously {
                let bitmaps = try c.leaf.presentPlannedWrite(pieces)
                if !bitmaps.isEmpty { return sendBitmaps(bitmaps, on: store, for: batch) }
            } else {
                try c.leaf.finishPlannedWrite(pieces)
            }
        } catch {
            c.leaf.dropCaches()
            return answer(batch, error)
        }
        answer(batch, nil, refreshing: c)
    }

    /// Sends `bitmaps` on `store`'s pipeline, all at once; the chain thread answers `batch`
    /// when the last one ended (`finishBitmaps`).
    private func sendBitmaps(_ bitmaps: [VHDImage.PlannedBitmap], on store: any AsyncBlockStore, for batch: [WrittenData]) {
        condition.withLock { bitmapsInFlight = true }
        // The bytes stay alive (and unchanged) in the completion's closure until the last write ended.
        let runs = bitmaps.map { bitmap in
            (bytes: UnsafeRawBufferPointer(bitmap.bytes.withUnsafeBytes { TransferredBuffer($0) }.bytes), offset: bitmap.storeOffset)
        }
        store.startWrites(runs) { [self] error in
            condition.withLock {
                writtenBitmaps.append(WrittenBitmaps(batch: batch, bitmaps: bitmaps, error: error))
                condition.broadcast()
            }
        }
    }

    /// Answers a batch whose bitmaps were sent: written, the batmap learns of the blocks they
    /// fill; failed, the leaf forgets its cached bitmaps (read again from the store).
    private func finishBitmaps(_ written: WrittenBitmaps) {
        condition.withLock { bitmapsInFlight = false }
        guard let c = chain, written.batch.allSatisfy({ $0.plan.image === c.leaf }) else {
            return answer(written.batch, VHDError.invalidArgument("the chain changed under planned writes"))
        }
        if let error = written.error {
            c.leaf.dropCaches()
            return answer(written.batch, error)
        }
        c.leaf.plannedBitmapsWritten(written.bitmaps)
        answer(written.batch, nil, refreshing: c)
    }

    /// Answers the planned WRITEs of `batch`: those whose data failed with their error, the
    /// others with `failure` or done (the read map first brought up to date from `chain`).
    private func answer(_ batch: [WrittenData], _ failure: Error?, refreshing chain: VHDChain? = nil) {
        if failure == nil, let c = chain {
            for w in batch where w.error == nil { readMap.refresh(c, offset: w.plan.offset, length: w.plan.payload.readableBytes) }
        }
        condition.withLock {
            writesInFlight -= batch.count
            stats.plannedWrites += UInt64(batch.count)
            if writesInFlight == 0 { condition.broadcast() }
        }
        for w in batch {
            if let e = w.error ?? failure { finish(w.job, .failed(ChainIO.errno(for: e))) } else { finish(w.job, .done) }
        }
    }

    /// Takes what the chain thread finishes next of the planned WRITEs (under `condition`):
    /// sent bitmaps first, then sent data while no bitmaps are in flight.
    private func takeFinishing() -> Finishing? {
        if !writtenBitmaps.isEmpty { return .bitmaps(writtenBitmaps.removeFirst()) }
        guard !writtenData.isEmpty, !bitmapsInFlight else { return nil }
        defer { writtenData.removeAll() }
        return .data(writtenData)
    }

    /// Finishes what `takeFinishing` took (on the chain thread).
    private func finish(_ finishing: Finishing) {
        switch finishing {
        case let .data(batch): finishWrites(batch)
        case let .bitmaps(written): finishBitmaps(written)
        }
    }

    /// A fast write taking longer than this (ns) plus a nanosecond per byte was held up by the kernel.
    public static let defaultStallThreshold: UInt64 = 1_000_000
    /// This worker's threshold (tests lower it).
    let stallThreshold: UInt64
    /// How long writes take the chain thread after a held-up fast write, in nanoseconds.
    static let stallBackoff: UInt64 = 250_000_000
    /// Uptime (ns) before which writes take the chain thread (set by a held-up fast write).
    private let fastWritesResume = Atomic<UInt64>(0)
    /// Fast writes held up (for `statistics`).
    private let fastWritesStalled = Atomic<UInt64>(0)

    /// What `writeFast` did with a WRITE.
    enum FastWrite {
        /// Written on the calling thread (pwrite): its result.
        case answered(NBDCommandResult)
        /// Its sectors are known and present in a leaf store that may wait on the network: `send`
        /// writes them from an I/O thread and calls the completion (the chain thread is not involved).
        case sending(_ send: @Sendable (@escaping @Sendable (NBDCommandResult) -> Void) -> Void)
    }

    /// A plain WRITE (no FUA) of `payload` at `offset` that needs no chain thread, because the read
    /// map knows every block it touches as wholly present in the writable leaf: done on the
    /// calling thread (an event loop) with pwrite when the leaf is a file and no recent fast
    /// write was held up (`.answered` once the data is in the leaf file), or handed back to be
    /// sent from an I/O thread when the leaf is a store that takes several writers (`.sending`);
    /// else nil (queue it). `started` is when it arrived.
    func writeFast(_ payload: ByteBuffer, offset: UInt64, started: UInt64) -> FastWrite? {
        guard started >= fastWritesResume.load(ordering: .relaxed), mirrors.current == nil else { return nil }
        let length = payload.readableBytes
        guard let plan = readMap.writeTarget(offset: offset, length: length) else { return nil }
        // The read map holds off a pause until this write is finished, so its block reaches the log.
        markChanged(offset: offset, length: UInt64(length))
        if plan.runsAsync {
            // No thread waits: the payload stays alive (and unchanged) in this closure until the end.
            return .sending { [readMap] completion in
                let bytes = payload.withUnsafeReadableBytes { TransferredBuffer($0) }
                plan.writeAsync(from: bytes) { error in
                    withExtendedLifetime(payload) {}
                    completion(Self.endFastWrite(readMap, length: length, started: started, error: error))
                }
            }
        }
        let write: @Sendable () -> Error? = {
            do { try payload.withUnsafeReadableBytes { try plan.write(from: $0) }; return nil } catch { return error }
        }
        if plan.usesStores {
            return .sending { [ioPool, readMap] completion in
                ioPool.submit { _ in completion(Self.endFastWrite(readMap, length: length, started: started, error: write())) }
            }
        }
        let error = write()
        let ended = DispatchTime.now().uptimeNanoseconds
        if ended - started > stallThreshold + UInt64(length) {
            fastWritesResume.store(ended + Self.stallBackoff, ordering: .relaxed)
            fastWritesStalled.add(1, ordering: .relaxed)
        }
        return .answered(Self.endFastWrite(readMap, length: length, started: started, error: error, ended: ended))
    }

    /// Ends a fast write of `length` bytes that arrived at `started`: counted in `map`, its result.
    private static func endFastWrite(_ map: ReadMap, length: Int, started: UInt64, error: Error?,
                                     ended: UInt64 = DispatchTime.now().uptimeNanoseconds) -> NBDCommandResult {
        map.writeFinished(bytes: length, micros: (ended - started) / 1000, failed: error != nil)
        return error.map { .failed(ChainIO.errno(for: $0)) } ?? .done
    }

    /// Largest WRITE an event loop runs through the engine itself (`writeInline`): larger ones
    /// keep the chain thread, so that the event loop receives the next payload while it writes.
    static let inlineWriteLimit = 64 << 10

    /// A plain WRITE (no FUA) of whole sectors, at most `inlineWriteLimit` bytes, run through the
    /// engine on the calling thread (an event loop) when the chain thread is idle (nothing queued, running or
    /// paused) and no recent fast write was held up: the result, the read map brought up to date
    /// as after a queued WRITE (`submitWrite`), or nil (queue it). The chain is the event loop's
    /// for the write (`busy`): the chain thread starts nothing meanwhile, and the event loop
    /// never waits for it. It saves the two thread hops of a queued write, which is most of the
    /// cost of a small write into a block the leaf holds in part (just after a snapshot). A slow
    /// one sends writes to the queue for a while, as a slow fast write does.
    func writeInline(_ payload: ByteBuffer, offset: UInt64, started: UInt64) -> NBDCommandResult? {
        let length = payload.readableBytes
        // Whole sectors only: an unaligned write reads its head and tail sectors first, maybe from the disk.
        guard length <= Self.inlineWriteLimit, offset % 512 == 0, length % 512 == 0,
              started >= fastWritesResume.load(ordering: .relaxed), mirrors.current == nil else { return nil }
        condition.lock()
        guard state == .running, !busy, !leafPlansWrites, jobs.isEmpty, controls.isEmpty, let open = chain else {
            condition.unlock()
            return nil
        }
        busy = true
        condition.unlock()
        let ticket = readMap.writeQueued(offset: offset, length: UInt64(length))
        markChanged(offset: offset, length: UInt64(length))
        var result: NBDCommandResult
        do {
            result = try ChainIO.write(open, payload, offset: offset, fua: false)
            readMap.refresh(open, offset: offset, length: length)
        } catch {
            open.leaf.dropCaches()
            result = .failed(ChainIO.errno(for: error))
        }
        var failed = true
        if case .done = result { failed = false }
        readMap.writeDone(ticket: ticket, offset: offset, length: UInt64(length), refreshed: !failed)
        let ended = DispatchTime.now().uptimeNanoseconds
        if ended - started > stallThreshold + UInt64(length) {
            fastWritesResume.store(ended + Self.stallBackoff, ordering: .relaxed)
            fastWritesStalled.add(1, ordering: .relaxed)
        }
        condition.withLock {
            busy = false
            stats.record(.write, bytes: UInt64(length), micros: (ended - started) / 1000, failed: failed)
            inlineWrites += 1
            condition.broadcast()
        }
        return result
    }

    /// A READ planned from the read map, from the page cache on the calling thread: the data, or
    /// nil when the disk must be waited for (then `readPlanned`). `started` is when it arrived.
    func readCached(_ plan: ReadPlan, started: UInt64) -> ByteBuffer? {
        guard !plan.usesStores, case let .data(buffer, _)? = Self.executeCached(plan, headerRoom: 0) else { return nil }
        readMap.finished(bytes: plan.length, micros: (DispatchTime.now().uptimeNanoseconds - started) / 1000, failed: false)
        return buffer
    }

    /// Largest READ started without a waiting thread (its data is copied into the reply once read).
    static let asyncReadLimit = 256 << 10

    /// A READ planned from the read map: started without a waiting thread when its stores can
    /// (`ReadPlan.runsAsync`), else on an I/O thread.
    func readPlanned(_ plan: ReadPlan, started: UInt64, completion: @escaping @Sendable (NBDCommandResult) -> Void) {
        if plan.length <= Self.asyncReadLimit && plan.runsAsync {
            let raw = TransferredBuffer(UnsafeMutableRawBufferPointer.allocate(byteCount: plan.length, alignment: 4096))
            plan.executeAsync(into: raw) { [readMap] error in
                var result = NBDCommandResult.failed(error.map { ChainIO.errno(for: $0) } ?? NBD.Errno.eio)
                if error == nil {
                    var buffer = ByteBufferAllocator().buffer(capacity: plan.length)
                    buffer.writeBytes(UnsafeRawBufferPointer(raw.bytes))
                    result = .data(buffer, headerRoom: 0)
                }
                raw.bytes.deallocate()
                readMap.finished(bytes: plan.length, micros: (DispatchTime.now().uptimeNanoseconds - started) / 1000, failed: error != nil)
                completion(result)
            }
            return
        }
        ioPool.submit { [readMap] _ in
            let result = Self.execute(plan, headerRoom: 0)
            var failed = false
            if case .failed = result { failed = true }
            readMap.finished(bytes: plan.length, micros: (DispatchTime.now().uptimeNanoseconds - started) / 1000, failed: failed)
            completion(result)
        }
    }

    /// Largest READ the chain thread copies from the page cache itself.
    static let chainCopyLimit = 128 << 10

    /// `plan` read from the page cache only into a new buffer with `headerRoom` bytes in front,
    /// or nil when some of it must come from the disk.
    static func executeCached(_ plan: ReadPlan, headerRoom room: Int) -> NBDCommandResult? {
        var buffer = ByteBufferAllocator().buffer(capacity: room + plan.length)
        buffer.moveWriterIndex(forwardBy: room)
        let copied = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: plan.length) { ptr in
            plan.executeCached(into: UnsafeMutableRawBufferPointer(rebasing: ptr[0..<plan.length])) ? plan.length : 0
        }
        return copied == plan.length ? .data(buffer, headerRoom: room) : nil
    }

    /// Runs `plan` into a new buffer with `headerRoom` bytes in front.
    static func execute(_ plan: ReadPlan, headerRoom room: Int) -> NBDCommandResult {
        var buffer = ByteBufferAllocator().buffer(capacity: room + plan.length)
        buffer.moveWriterIndex(forwardBy: room)
        do {
            try buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: plan.length) { ptr in
                try plan.execute(into: UnsafeMutableRawBufferPointer(rebasing: ptr[0..<plan.length]))
                return plan.length
            }
            return .data(buffer, headerRoom: room)
        } catch {
            return .failed(ChainIO.errno(for: error))
        }
    }

    private func enqueue(_ job: Job) {
        let accepted: Bool = condition.withLock {
            guard state != .closed else { return false }
            jobs.append(job)
            condition.broadcast()
            return true
        }
        if !accepted { job.completion(.failed(NBD.Errno.eshutdown)) }
    }

    /// Waits (on the chain thread) until no planned read or write is running, finishing the
    /// planned writes whose data is sent meanwhile.
    private func drainIO() {
        condition.lock()
        while readsInFlight > 0 || writesInFlight > 0 {
            if let finishing = takeFinishing() {
                condition.unlock()
                finish(finishing)
                condition.lock()
                continue
            }
            condition.wait()
        }
        condition.unlock()
    }

    /// Stops taking requests after the one running, flushes and closes the chain.
    /// With `sync` false the leaf's metadata is written but not forced to disk: for a pause after
    /// which nothing relies on the leaf's durability (a leaf merged away while paused).
    public func pause(sync: Bool = true, _ completion: @escaping @Sendable (Result<Void, Failure>) -> Void) {
        control(completion) { [self] in
            guard let c = chain else { return .success(()) }     // already paused
            readMap.close()
            drainIO()
            var result: Result<Void, Failure> = .success(())
            do { if sync { try c.flush() } else { try c.leaf.commit() } } catch { result = .failure(.flush("\(error)")) }
            do { try closeTracker() } catch { result = .failure(.flush("CBT log: \(error)")) }
            chain = nil
            condition.withLock { state = .paused; stats.pauses += 1; layers = [] }
            return result
        }
    }

    /// Reopens the chain from volume `leaf` (default: the volume it had) and releases waiting
    /// requests.
    public func unpause(leaf newLeaf: String? = nil, _ completion: @escaping @Sendable (Result<Void, Failure>) -> Void) {
        unpause(container: nil, leaf: newLeaf, completion)
    }

    /// Reopens a paused chain from volume `leaf` of another container (`newContainer`; nil: the
    /// same one) and releases waiting requests: a live migration's switch to its destination.
    /// On failure the chain stays paused on the old container.
    public func unpause(container newContainer: (any VolumeContainer)?, leaf newLeaf: String?,
                        _ completion: @escaping @Sendable (Result<Void, Failure>) -> Void) {
        control(completion) { [self] in
            let leaf = newLeaf ?? condition.withLock { leafVolume }
            if chain != nil && newLeaf == nil { return .success(()) }      // not paused
            if newContainer != nil && chain != nil { return .failure(.reopen("not paused")) }
            let container = newContainer ?? self.container
            do {
                readMap.close()
                drainIO()
                let c: VHDChain
                let t: CBTTracker?
                do {
                    c = try Self.openChain(container, leaf, writable: writable)
                    t = try tracker ?? Self.openTracker(container, leaf, writable: writable)
                } catch {
                    if let old = chain { readMap.open(old) }
                    throw error
                }
                if let old = chain { try? old.flush() }
                tracker = t
                chain = c
                readMap.open(c)
                condition.withLock {
                    containerValue = container
                    leafVolume = leaf
                    size = c.virtualSize
                    noteLeafStore(c)
                    state = .running
                    condition.broadcast()
                }
                return .success(())
            } catch {
                return .failure(.reopen("\(error)"))
            }
        }
    }

    /// Forces what was written to disk without pausing (ahead of a pause, so that the pause's own
    /// flush finds little left to write).
    public func flush(_ completion: @escaping @Sendable (Result<Void, Failure>) -> Void) {
        control(completion) { [self] in
            guard let c = chain else { return .success(()) }
            do { try c.flush(); try persistChanges() } catch { return .failure(.flush("\(error)")) }
            return .success(())
        }
    }

    /// Reopens a running chain from volume `leaf` (default: the same leaf, whose parents changed:
    /// a relink), between two requests: reads drained, the leaf's metadata written (its data stays
    /// in the same volume, so the next client flush still covers it), the new chain swapped in.
    public func refresh(leaf newLeaf: String? = nil, _ completion: @escaping @Sendable (Result<Void, Failure>) -> Void) {
        control(completion) { [self] in
            guard let old = chain else { return .failure(.reopen("paused")) }
            let leaf = newLeaf ?? condition.withLock { leafVolume }
            readMap.close()
            drainIO()
            do {
                try old.leaf.commit()
                let c = try Self.openChain(container, leaf, writable: writable)
                chain = c
                readMap.open(c)
                condition.withLock {
                    leafVolume = leaf; size = c.virtualSize; stats.refreshes += 1
                    noteLeafStore(c)
                }
                return .success(())
            } catch {
                readMap.open(old)
                return .failure(.reopen("\(error)"))
            }
        }
    }

    /// Flushes and closes the chain, fails every waiting request with ESHUTDOWN and ends the thread.
    public func close(_ completion: @escaping @Sendable (Result<Void, Failure>) -> Void) {
        control(completion) { [self] in
            var result: Result<Void, Failure> = .success(())
            readMap.close()
            drainIO()
            if let c = chain { do { try c.flush() } catch { result = .failure(.flush("\(error)")) } }
            do { try closeTracker() } catch { result = .failure(.flush("CBT log: \(error)")) }
            chain = nil
            ioPool.shutdownGracefully { _ in }
            let dropped: [Job] = condition.withLock {
                state = .closed
                let d = Array(jobs)
                jobs.removeAll()
                return d
            }
            for j in dropped { j.completion(.failed(NBD.Errno.eshutdown)) }
            return result
        }
    }

    /// Blocking forms for callers that are not event loops.
    public func pauseAndWait() throws { try wait { pause($0) } }
    /// Blocking unpause.
    public func unpauseAndWait(leaf: String? = nil) throws { try wait { unpause(leaf: leaf, $0) } }
    /// Blocking unpause onto another container.
    public func unpauseAndWait(container: any VolumeContainer, leaf: String) throws {
        try wait { unpause(container: container, leaf: leaf, $0) }
    }
    /// Blocking close.
    public func closeAndWait() throws { try wait { close($0) } }

    private func wait(_ start: (@escaping @Sendable (Result<Void, Failure>) -> Void) -> Void) throws {
        let box = ResultBox()
        start { box.set($0) }
        try box.get().get()
    }

    private func control(_ completion: @escaping @Sendable (Result<Void, Failure>) -> Void,
                         _ body: @escaping () -> Result<Void, Failure>) {
        let accepted: Bool = condition.withLock {
            guard state != .closed else { return false }
            controls.append { completion(body()) }
            condition.broadcast()
            return true
        }
        if !accepted { completion(.failure(.closed)) }
    }

    /// Whether planned WRITEs wait for the chain thread to finish them (under `condition`).
    private var finishable: Bool { !writtenBitmaps.isEmpty || (!writtenData.isEmpty && !bitmapsInFlight) }

    /// Whether the next job may run (under `condition`): while bitmaps are in flight, only the
    /// planning of planned WRITEs, which writes none.
    private var jobRunnable: Bool {
        guard let next = jobs.first else { return false }
        return !bitmapsInFlight || next.planned
    }

    private func loop() {
        while true {
            condition.lock()
            while busy || (controls.isEmpty && !finishable && (state != .running || !jobRunnable) && state != .closed) {
                condition.wait()
            }
            if let finishing = takeFinishing() {
                busy = true
                condition.unlock()
                finish(finishing)
                condition.withLock { busy = false }
                continue
            }
            if !controls.isEmpty {
                let c = controls.removeFirst()
                busy = true
                condition.unlock()
                c()
                condition.withLock { busy = false }
                continue
            }
            if state == .closed {
                finished = true
                condition.broadcast()
                condition.unlock()
                return
            }
            let job = jobs.removeFirst()
            busy = true
            condition.unlock()
            run(job)
        }
    }

    private func run(_ job: Job) {
        let outcome: Outcome
        if let c = chain {
            do { outcome = try job.body(c) } catch { outcome = .result(.failed(ChainIO.errno(for: error))) }
        } else {
            outcome = .result(.failed(NBD.Errno.eshutdown))
        }
        condition.withLock { busy = false }
        switch outcome {
        case let .result(result):
            finish(job, result)
        case let .read(plan, room):
            condition.withLock { readsInFlight += 1 }
            ioPool.submit { [self] _ in
                finish(job, Self.execute(plan, headerRoom: room))
                condition.withLock {
                    readsInFlight -= 1
                    if readsInFlight == 0 { condition.broadcast() }
                }
            }
        case let .write(plan):
            condition.withLock { writesInFlight += 1 }
            let written: @Sendable (Error?) -> Void = { [self] failure in
                condition.withLock {
                    writtenData.append(WrittenData(job: job, plan: plan, error: failure))
                    condition.broadcast()
                }
            }
            // On the store's pipeline when it has one up, else from an I/O thread.
            if plan.startData(completion: written) { break }
            ioPool.submit { _ in
                var failure: Error?
                do { try plan.writeData() } catch { failure = error }
                written(failure)
            }
        }
    }

    private func finish(_ job: Job, _ result: NBDCommandResult) {
        let micros = (DispatchTime.now().uptimeNanoseconds - job.queued) / 1000
        var failed = false
        if case .failed = result { failed = true }
        condition.withLock { stats.record(job.kind, bytes: job.bytes, micros: micros, failed: failed) }
        job.completion(result)
    }

    /// Waits until the thread has ended (after `close`).
    public func join() {
        condition.withLock { while !finished { condition.wait() } }
    }
}

/// A one-shot result handed from the chain thread to a waiting caller.
final class ResultBox: @unchecked Sendable {
    private let condition = NSCondition()
    private var value: Result<Void, ChainWorker.Failure>?

    /// Stores the result and wakes the waiter.
    func set(_ r: Result<Void, ChainWorker.Failure>) {
        condition.withLock { value = r; condition.broadcast() }
    }

    /// Waits for the result.
    func get() -> Result<Void, ChainWorker.Failure> {
        condition.withLock {
            while value == nil { condition.wait() }
            return value!
        }
    }
}
