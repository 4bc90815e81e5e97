import CNFS
import Foundation
import RemoteStorage

/// READs and WRITEs of one file sent without a thread waiting for each: a `LanePipeline` whose
/// lanes are libnfs contexts of their own with the file open, many RPCs in flight on each
/// through libnfs's asynchronous calls (as qemu's NFS driver sends them). A request ends with
/// false (the caller sends it again the blocking way, which holds through outages as the
/// mount's policy says) on an error, a short transfer, a timeout or a lost connection.
final class NFSPipeline: @unchecked Sendable {
    /// One READ or WRITE of at most `maxTransfer` bytes.
    struct Request {
        /// Where in the file.
        var offset: UInt64
        /// Bytes.
        var length: Int
        /// Where the data lands (READ) or comes from (WRITE); valid until the request ended.
        var buffer: UnsafeMutableRawPointer
        /// Whether it writes.
        var isWrite: Bool
    }

    /// Most RPCs in flight on one lane.
    static let laneDepth = 32
    /// Lanes per file.
    static let laneCount = 2
    /// Largest request sent as one RPC (the store splits larger ones).
    static let largestTransfer = 256 << 10

    private let lanes: LanePipeline<NFSLane>
    /// Largest request one RPC carries: `largestTransfer`, or less when the server reads or writes
    /// less at once (known once a lane is up).
    let maxTransfer: Int

    /// A pipeline for the file at `path` of `target`'s export (opened for writing when
    /// `writable`), the server's transfer sizes already known from `mount`'s first connection;
    /// its thread starts at once, its lanes connect in the background.
    init(target: NFSTarget, path: String, writable: Bool, serverTransfer: Int) {
        maxTransfer = serverTransfer >= 4096 ? min(Self.largestTransfer, serverTransfer) : 4096
        lanes = LanePipeline(name: "nfs-pipeline", lanes: Self.laneCount, depth: Self.laneDepth) {
            try NFSLane(target: target, path: path, writable: writable)
        }
    }

    /// Whether some lane is up (else requests are better sent the blocking way at once).
    var isUp: Bool { lanes.isUp }

    /// Requests the server did in full, and requests ended with false (sent again the blocking way).
    var counts: (answered: UInt64, fellBack: UInt64) { lanes.counts }

    /// Queues `request`; `done` runs once, on the pipeline's thread: true when the server did all of it.
    func submit(_ request: Request, done: @escaping @Sendable (Bool) -> Void) { lanes.submit(request, done: done) }

    /// Stops the thread: what is in flight or queued ends with false; the lanes disconnect.
    func close() { lanes.close() }
}

/// One libnfs context with the file open, and the RPCs in flight on it (the pipeline's thread
/// only). An RPC's callback finds its lane through the context (`NFSLane.byContext`) and its job
/// by number, never through a pointer libnfs keeps: a callback for an RPC already ended (or one
/// libnfs makes twice, or while the context goes) finds nothing and does nothing.
final class NFSLane: PipelineLane, @unchecked Sendable {
    /// The lanes whose contexts are alive, by context.
    static let byContext = Registry()

    /// Lanes by context, from any thread.
    final class Registry: @unchecked Sendable {
        private let lock = NSLock()
        private var lanes: [OpaquePointer: NFSLane] = [:]
        /// The lane of `context`, if it is alive.
        subscript(context: OpaquePointer) -> NFSLane? {
            get { lock.withLock { lanes[context] } }
            set { lock.withLock { lanes[context] = newValue } }
        }
    }

    private let connection: NFSConnection
    private let context: OpaquePointer
    private let file: OpaquePointer
    private var operations: [UInt: PipelineJob<NFSPipeline.Request>] = [:]
    private var nextID: UInt = 1
    /// RPCs that ended since the last `service`, with whether they moved every byte.
    private var finished: [(PipelineJob<NFSPipeline.Request>, Bool)] = []

    /// A new connection to `target`'s export with the file at `path` open.
    init(target: NFSTarget, path: String, writable: Bool) throws {
        connection = NFSConnection(target: target)
        try connection.connect()
        file = try connection.handle(store: 0, path: path, writable: writable)
        guard let context = connection.asyncContext else { throw NFSError.transport(operation: "open \(path)", reason: "not connected") }
        self.context = context
        Self.byContext[context] = self
    }

    /// RPCs started and not ended.
    var inFlight: Int { operations.count }

    /// The connection's socket and what libnfs waits for.
    var pollRequest: pollfd {
        pollfd(fd: nfs_get_fd(context), events: Int16(truncatingIfNeeded: nfs_which_events(context)), revents: 0)
    }

    /// Starts the asynchronous pread or pwrite of `job`.
    func start(_ job: PipelineJob<NFSPipeline.Request>) -> Bool {
        let id = nextID
        nextID = nextID == UInt.max ? 1 : nextID + 1
        operations[id] = job
        let tag = UnsafeMutableRawPointer(bitPattern: id)
        let r = job.request
        let rc = r.isWrite
            ? nfs_pwrite_async(context, file, r.offset, UInt64(r.length), r.buffer, nfsLaneCallback, tag)
            : nfs_pread_async(context, file, r.offset, UInt64(r.length), nfsLaneCallback, tag)
        // Refused: ended by the caller, unless libnfs already reported it (then it is in `finished`).
        if rc != 0 { return operations.removeValue(forKey: id) == nil }
        return true
    }

    /// Lets libnfs read, write and time out RPCs; the ones that ended.
    func service(_ revents: Int16) -> (alive: Bool, ended: [(PipelineJob<NFSPipeline.Request>, Bool)]) {
        let alive = nfs_service(context, Int32(revents)) == 0
        defer { finished.removeAll(keepingCapacity: true) }
        return (alive, finished)
    }

    /// Takes what is in flight (it ends with false), then disconnects: libnfs's callbacks for
    /// those RPCs, if it makes them while the context goes, find nothing.
    func shutdown() -> [PipelineJob<NFSPipeline.Request>] {
        let left = finished.map { $0.0 } + Array(operations.values)
        finished.removeAll()
        operations.removeAll()
        connection.disconnect()
        Self.byContext[context] = nil
        return left
    }

    /// What libnfs reports for RPC `id` (inside `nfs_service`, or while the context goes): a
    /// READ's data copied into the request's buffer; the job noted as finished, in full or not.
    fileprivate func finish(_ id: UInt, status: Int32, data: UnsafeMutableRawPointer?) {
        guard let job = operations.removeValue(forKey: id) else { return }
        let r = job.request
        let all = status >= 0 && Int(status) == r.length && (r.isWrite || data != nil)
        if all && !r.isWrite { r.buffer.copyMemory(from: data!, byteCount: r.length) }
        finished.append((job, all))
    }
}

/// libnfs's callback for a lane's READs and WRITEs: the context names the lane, the private
/// data is the RPC's number.
private let nfsLaneCallback: nfs_cb = { status, nfs, data, tag in
    guard let nfs, let lane = NFSLane.byContext[nfs] else { return }
    lane.finish(UInt(bitPattern: tag), status: status, data: data)
}
