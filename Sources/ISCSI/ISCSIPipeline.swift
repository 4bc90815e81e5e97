import Foundation
import RemoteStorage

/// READs and WRITEs of one LUN sent without a thread waiting for each: a `LanePipeline` whose
/// lanes are sessions borrowed from the device's pool, many commands in flight on each. A
/// request ends with false (the caller sends it again the blocking way, which holds through
/// outages and moves to another path as the device's policy says) when its session is lost,
/// times out, or the target answers anything but GOOD (UNIT ATTENTION among them).
final class ISCSIPipeline: @unchecked Sendable {
    /// One READ or WRITE of whole blocks.
    struct Request {
        /// The first block.
        var lba: UInt64
        /// Bytes (whole blocks, at most the store's command size).
        var length: Int
        /// Where the data lands (READ) or comes from (WRITE); valid until the request ended.
        var buffer: UnsafeMutableRawPointer
        /// Whether it writes.
        var isWrite: Bool
    }

    /// Most commands in flight on one lane.
    static let laneDepth = 32
    /// Lanes per path.
    static let lanesPerPath = 2

    private let lanes: LanePipeline<ISCSILane>

    /// A pipeline for `lun` (blocks of `blockSize` bytes) with `paths` paths, its lanes opened
    /// by `open` and handed back with `giveBack`; its thread starts at once.
    init(lun: Int, blockSize: Int, paths: Int, open: @escaping @Sendable () throws -> ISCSIConnection,
         giveBack: @escaping @Sendable (ISCSIConnection) -> Void) {
        lanes = LanePipeline(name: "iscsi-pipeline", lanes: max(1, paths) * Self.lanesPerPath, depth: Self.laneDepth) {
            ISCSILane(try open(), lun: lun, blockSize: blockSize, giveBack: giveBack)
        }
    }

    /// Whether some lane is up (else requests are better sent the blocking way at once).
    var isUp: Bool { lanes.isUp }

    /// Requests the target answered GOOD, and requests ended with false (sent again the blocking way).
    var counts: (answered: UInt64, fellBack: UInt64) { lanes.counts }

    /// Queues `request`; `done` runs once, on the pipeline's thread: true when the target answered GOOD.
    func submit(_ request: Request, done: @escaping @Sendable (Bool) -> Void) { lanes.submit(request, done: done) }

    /// Stops the thread: what is in flight or queued ends with false; the lanes go back.
    func close() { lanes.close() }
}

/// One session of the pipeline and the commands in flight on it (the pipeline's thread only).
final class ISCSILane: PipelineLane {
    private let connection: ISCSIConnection
    private let lun: Int
    private let blockSize: Int
    private let giveBack: @Sendable (ISCSIConnection) -> Void
    private var commands: [(completion: ISCSICompletion, job: PipelineJob<ISCSIPipeline.Request>)] = []

    /// A lane on `connection` to `lun`, handed back with `giveBack` when it shuts down.
    init(_ connection: ISCSIConnection, lun: Int, blockSize: Int, giveBack: @escaping @Sendable (ISCSIConnection) -> Void) {
        self.connection = connection
        self.lun = lun
        self.blockSize = blockSize
        self.giveBack = giveBack
    }

    /// Commands started and not ended.
    var inFlight: Int { commands.count }

    /// The session's socket and what libiscsi waits for.
    var pollRequest: pollfd { connection.pollRequest ?? pollfd(fd: -1, events: 0, revents: 0) }

    /// Starts the READ(16) or WRITE(16) of `job`.
    func start(_ job: PipelineJob<ISCSIPipeline.Request>) -> Bool {
        let r = job.request
        let command = r.isWrite ? ISCSIConnection.write16(lun: lun, lba: r.lba, from: r.buffer, length: r.length, blockSize: blockSize)
                                : ISCSIConnection.read16(lun: lun, lba: r.lba, into: r.buffer, length: r.length, blockSize: blockSize)
        guard let completion = try? connection.begin(command) else { return false }
        commands.append((completion, job))
        return true
    }

    /// Lets libiscsi work; the commands that ended (GOOD or not).
    func service(_ revents: Int16) -> (alive: Bool, ended: [(PipelineJob<ISCSIPipeline.Request>, Bool)]) {
        let alive = connection.service(revents)
        var ended: [(PipelineJob<ISCSIPipeline.Request>, Bool)] = []
        commands.removeAll { entry in
            guard entry.completion.done else { return false }
            let error = connection.end(entry.completion, entry.job.request.isWrite ? "WRITE(16)" : "READ(16)")
            ended.append((entry.job, error == nil))
            return true
        }
        return (alive, ended)
    }

    /// Disconnects the session and hands it back to the device's pool.
    func shutdown() -> [PipelineJob<ISCSIPipeline.Request>] {
        let left = commands.map { $0.job }
        commands.removeAll()
        connection.disconnect()
        giveBack(connection)
        return left
    }
}
