import Foundation
import Synchronization

/// READs and WRITEs of one LUN sent without a thread waiting for each: one thread owns a few
/// sessions ("lanes", borrowed from the device's pool) and keeps many commands in flight on
/// each, as libiscsi's own tools and qemu do, instead of one command per session and a thread
/// blocked on it. Requests come in from any thread (`submit`), the thread wakes through a pipe
/// when it sleeps in poll, and every request ends in its `done` callback, on this thread, with
/// true when the target answered GOOD. Anything else (a lost session, a timeout, a status such as
/// UNIT ATTENTION, no lane up yet) ends it with false and the caller sends it again the blocking
/// way, which holds through outages and moves to another path as the device's policy says; the
/// lane is dropped and a new one opened in the background.
final class ISCSIPipeline: @unchecked Sendable {
    /// One READ or WRITE of whole blocks.
    struct Request {
        /// The first block.
        var lba: UInt64
        /// Bytes (whole blocks, at most the store's command size).
        var length: Int
        /// Where the data lands (READ) or comes from (WRITE); valid until `done` ran.
        var buffer: UnsafeMutableRawPointer
        /// Whether it writes.
        var isWrite: Bool
        /// Called once, on the pipeline's thread: true when the target answered GOOD.
        var done: @Sendable (Bool) -> Void
    }

    /// One session and what is in flight on it (pipeline thread only).
    private final class Lane {
        let connection: ISCSIConnection
        var inFlight: [(completion: ISCSICompletion, request: Request)] = []
        init(_ connection: ISCSIConnection) { self.connection = connection }
    }

    /// Most commands in flight on one lane.
    static let laneDepth = 32
    /// Lanes per path.
    static let lanesPerPath = 2

    private let lun: Int
    private let blockSize: Int
    private let wantedLanes: Int
    /// Opens a logged-in session checked to lead to the LUN (the device's pool).
    private let openLane: @Sendable () throws -> ISCSIConnection
    /// Gives a session back to the device's pool.
    private let returnLane: @Sendable (ISCSIConnection) -> Void
    private let lock = NSLock()
    // Guarded by `lock`.
    private var incoming: [Request] = []
    private var adopted: [ISCSIConnection] = []
    private var opening = false
    private var sleeping = false
    private var closed = false
    private var laneCount = 0
    private let answeredCount = Atomic<UInt64>(0)
    private let fellBackCount = Atomic<UInt64>(0)
    private let wakeRead: Int32
    private let wakeWrite: Int32

    /// A pipeline for `lun` (blocks of `blockSize` bytes) with `paths` paths, its lanes opened
    /// by `open` and handed back with `giveBack`; its thread starts at once.
    init(lun: Int, blockSize: Int, paths: Int, open: @escaping @Sendable () throws -> ISCSIConnection,
         giveBack: @escaping @Sendable (ISCSIConnection) -> Void) {
        self.lun = lun
        self.blockSize = blockSize
        wantedLanes = max(1, paths) * Self.lanesPerPath
        openLane = open
        returnLane = giveBack
        var fds: [Int32] = [-1, -1]
        if pipe(&fds) == 0 {
            for fd in fds { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        }
        wakeRead = fds[0]
        wakeWrite = fds[1]
        let thread = Thread { [self] in run() }
        thread.name = "iscsi-pipeline"
        thread.start()
        openLanes()
    }

    /// Whether some lane is up (else requests are better sent the blocking way at once).
    var isUp: Bool { lock.withLock { laneCount + adopted.count > 0 && !closed } }

    /// Requests the target answered GOOD, and requests ended with false (sent again the blocking way).
    var counts: (answered: UInt64, fellBack: UInt64) {
        (answeredCount.load(ordering: .relaxed), fellBackCount.load(ordering: .relaxed))
    }

    /// Ends `request`: counted, and its `done` called with `ok`.
    private func end(_ request: Request, _ ok: Bool) {
        if ok { answeredCount.add(1, ordering: .relaxed) } else { fellBackCount.add(1, ordering: .relaxed) }
        request.done(ok)
    }

    /// Queues `request`; its `done` runs on the pipeline's thread.
    func submit(_ request: Request) {
        let (accepted, wake): (Bool, Bool) = lock.withLock {
            guard !closed else { return (false, false) }
            incoming.append(request)
            let wake = sleeping
            sleeping = false
            return (true, wake)
        }
        if !accepted { end(request, false); return }
        if wake { poke() }
    }

    /// Stops the thread: what is in flight or queued ends with false; the lanes go back.
    func close() {
        lock.withLock { closed = true }
        poke()
    }

    private func poke() {
        var byte: UInt8 = 1
        _ = write(wakeWrite, &byte, 1)
    }

    /// Opens lanes in the background until there are `wantedLanes` (one opener at a time; a
    /// failed login is tried again a second later, while the device is open).
    private func openLanes() {
        let start: Bool = lock.withLock {
            guard !opening && !closed && laneCount + adopted.count < wantedLanes else { return false }
            opening = true
            return true
        }
        guard start else { return }
        let thread = Thread { [self] in
            while true {
                let more = lock.withLock { !closed && laneCount + adopted.count < wantedLanes }
                guard more else { break }
                do {
                    let c = try openLane()
                    let keep: Bool = lock.withLock {
                        guard !closed else { return false }
                        adopted.append(c)
                        return true
                    }
                    if keep { poke() } else { returnLane(c); break }
                } catch {
                    Thread.sleep(forTimeInterval: 1)
                }
            }
            lock.withLock { opening = false }
        }
        thread.name = "iscsi-lane-opener"
        thread.start()
    }

    // MARK: The pipeline's thread

    private func run() {
        var lanes: [Lane] = []
        var backlog: [Request] = []
        defer {
            for lane in lanes {
                for entry in lane.inFlight { end(entry.request, false) }
                lane.connection.disconnect()
                returnLane(lane.connection)
            }
            for r in backlog { end(r, false) }
            closeDescriptor(wakeRead)
            closeDescriptor(wakeWrite)
        }
        while true {
            let (taken, newLanes, isClosed): ([Request], [ISCSIConnection], Bool) = lock.withLock {
                defer { incoming.removeAll(keepingCapacity: true); adopted.removeAll() }
                return (incoming, adopted, closed)
            }
            for c in newLanes { lanes.append(Lane(c)) }
            if isClosed {
                for r in taken { end(r, false) }
                lock.withLock { laneCount = lanes.count }
                return
            }
            backlog += taken
            // Each request on the lane with the fewest in flight; none up: the blocking way.
            var waiting: [Request] = []
            for r in backlog {
                guard let lane = lanes.min(by: { $0.inFlight.count < $1.inFlight.count }) else { end(r, false); continue }
                guard lane.inFlight.count < Self.laneDepth else { waiting.append(r); continue }
                do {
                    lane.inFlight.append((try lane.connection.begin(command(r)), r))
                } catch {
                    end(r, false)
                }
            }
            backlog = waiting
            // Poll the lanes and the wake pipe.
            var fds = [pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0)]
            for lane in lanes { fds.append(lane.connection.pollRequest ?? pollfd(fd: -1, events: 0, revents: 0)) }
            // Sleep in poll only with nothing queued; from then on a submitter pokes the pipe.
            let mayWait: Bool = lock.withLock {
                laneCount = lanes.count
                sleeping = incoming.isEmpty && adopted.isEmpty && !closed
                return sleeping
            }
            let rc = poll(&fds, nfds_t(fds.count), mayWait ? 1000 : 0)
            if mayWait { lock.withLock { sleeping = false } }
            if rc < 0 && errno != EINTR { Thread.sleep(forTimeInterval: 0.01) }
            if fds[0].revents != 0 {
                var sink = [UInt8](repeating: 0, count: 64)
                while read(wakeRead, &sink, sink.count) > 0 {}
            }
            // Service every lane (timeouts too), take what finished, drop the lanes that failed.
            var failed: [Int] = []
            for (i, lane) in lanes.enumerated() {
                let revents = fds[i + 1].revents
                guard revents != 0 || !lane.inFlight.isEmpty else { continue }
                let ok = lane.connection.service(revents) && (revents & Int16(POLLERR | POLLHUP | POLLNVAL)) == 0
                var still: [(completion: ISCSICompletion, request: Request)] = []
                for entry in lane.inFlight {
                    guard entry.completion.done else { still.append(entry); continue }
                    let error = lane.connection.end(entry.completion, entry.request.isWrite ? "WRITE(16)" : "READ(16)")
                    end(entry.request, error == nil)
                }
                lane.inFlight = still
                if !ok { failed.append(i) }
            }
            for i in failed.reversed() {
                let lane = lanes.remove(at: i)
                for entry in lane.inFlight { end(entry.request, false) }
                lane.connection.disconnect()
                returnLane(lane.connection)
            }
            if !failed.isEmpty {
                lock.withLock { laneCount = lanes.count }
                openLanes()
            }
        }
    }

    /// The READ(16) or WRITE(16) of `r`.
    private func command(_ r: Request) -> ISCSIConnection.Command {
        r.isWrite ? ISCSIConnection.write16(lun: lun, lba: r.lba, from: r.buffer, length: r.length, blockSize: blockSize)
                  : ISCSIConnection.read16(lun: lun, lba: r.lba, into: r.buffer, length: r.length, blockSize: blockSize)
    }
}

/// close(2), named apart from `ISCSIPipeline.close()`.
private func closeDescriptor(_ fd: Int32) {
    if fd >= 0 { _ = Glibc.close(fd) }
}
