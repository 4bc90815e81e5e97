import Foundation
import Synchronization

/// One connection of a `LanePipeline` ("lane"), driven by the pipeline's thread only: it starts
/// requests without waiting for them, says what to poll for, and reports what ended.
public protocol PipelineLane: AnyObject {
    /// What one request asks for.
    associatedtype Request
    /// Requests started and not ended.
    var inFlight: Int { get }
    /// What poll(2) should wait for on the connection.
    var pollRequest: pollfd { get }
    /// Starts `job`: false when it could not be queued (it then ends with false).
    func start(_ job: PipelineJob<Request>) -> Bool
    /// Lets the connection work after poll reported `revents` (0: only timeouts to check):
    /// the jobs that ended, each with whether it was done in full, and false as `alive` when
    /// the connection failed (the pipeline then shuts the lane down and opens another).
    func service(_ revents: Int16) -> (alive: Bool, ended: [(PipelineJob<Request>, Bool)])
    /// Closes the connection: the jobs still in flight (they end with false).
    func shutdown() -> [PipelineJob<Request>]
}

/// A request and who waits for its end.
public struct PipelineJob<Request> {
    /// What it asks for.
    public let request: Request
    /// Called once, on the pipeline's thread: true when it was done in full.
    public let done: @Sendable (Bool) -> Void
}

/// Requests to a storage server sent without a thread waiting for each: one thread owns a few
/// connections ("lanes") and keeps many requests in flight on each, as libiscsi's and libnfs's
/// own tools and qemu do, instead of one request per connection and a thread blocked on it.
/// Requests come in from any thread (`submit`) and wake the thread through a pipe when it sleeps
/// in poll; each ends in its `done` callback, on this thread, with true when the server did it
/// all. Anything else (a lost connection, a timeout, an error status, no lane up yet) ends it
/// with false, and the caller sends it again the blocking way, which holds through outages as
/// its policy says; a failed lane is shut down and a new one opened in the background.
public final class LanePipeline<Lane: PipelineLane>: @unchecked Sendable {
    /// A lane handed from the thread that opened it to the pipeline's thread.
    private struct Opened: @unchecked Sendable { let lane: Lane }

    private let wantedLanes: Int
    private let depth: Int
    private let name: String
    private let openLane: @Sendable () throws -> Lane
    private let lock = NSLock()
    // Guarded by `lock`.
    private var incoming: [PipelineJob<Lane.Request>] = []
    private var adopted: [Opened] = []
    private var opening = false
    private var sleeping = false
    private var closed = false
    private var laneCount = 0
    private let answeredCount = Atomic<UInt64>(0)
    private let fellBackCount = Atomic<UInt64>(0)
    private let wake = WakePipe()

    /// A pipeline of `lanes` lanes opened by `open` (in the background, again after a failure),
    /// at most `depth` requests in flight on each; its thread, named `name`, starts at once.
    public init(name: String, lanes: Int, depth: Int, open: @escaping @Sendable () throws -> Lane) {
        self.name = name
        wantedLanes = max(1, lanes)
        self.depth = max(1, depth)
        openLane = open
        let thread = Thread { [self] in run() }
        thread.name = name
        thread.start()
        openLanes()
    }

    /// Whether some lane is up (else requests are better sent the blocking way at once).
    public var isUp: Bool { lock.withLock { laneCount + adopted.count > 0 && !closed } }

    /// Requests done in full, and requests ended with false (sent again the blocking way).
    public var counts: (answered: UInt64, fellBack: UInt64) {
        (answeredCount.load(ordering: .relaxed), fellBackCount.load(ordering: .relaxed))
    }

    /// Queues `request`; `done` runs on the pipeline's thread.
    public func submit(_ request: Lane.Request, done: @escaping @Sendable (Bool) -> Void) {
        let job = PipelineJob(request: request, done: done)
        let (accepted, poke): (Bool, Bool) = lock.withLock {
            guard !closed else { return (false, false) }
            incoming.append(job)
            let poke = sleeping
            sleeping = false
            return (true, poke)
        }
        if !accepted { end(job, false); return }
        if poke { wake.poke() }
    }

    /// Stops the thread: what is in flight or queued ends with false; the lanes shut down.
    public func close() {
        lock.withLock { closed = true }
        wake.poke()
    }

    private func end(_ job: PipelineJob<Lane.Request>, _ ok: Bool) {
        if ok { answeredCount.add(1, ordering: .relaxed) } else { fellBackCount.add(1, ordering: .relaxed) }
        job.done(ok)
    }

    /// Opens lanes in the background until there are `wantedLanes` (one opener at a time; a
    /// failed open is tried again a second later, while the pipeline is open).
    private func openLanes() {
        let start: Bool = lock.withLock {
            guard !opening && !closed && laneCount + adopted.count < wantedLanes else { return false }
            opening = true
            return true
        }
        guard start else { return }
        let thread = Thread { [self] in
            while lock.withLock({ !closed && laneCount + adopted.count < wantedLanes }) {
                do {
                    let lane = try openLane()
                    let keep: Bool = lock.withLock {
                        guard !closed else { return false }
                        adopted.append(Opened(lane: lane))
                        return true
                    }
                    if keep { wake.poke() } else { _ = lane.shutdown(); break }
                } catch {
                    Thread.sleep(forTimeInterval: 1)
                }
            }
            lock.withLock { opening = false }
        }
        thread.name = name + "-opener"
        thread.start()
    }

    /// Shuts `lane` down, ending what was in flight on it with false.
    private func drop(_ lane: Lane) {
        for job in lane.shutdown() { end(job, false) }
    }

    // MARK: The pipeline's thread

    private func run() {
        var lanes: [Lane] = []
        var backlog: [PipelineJob<Lane.Request>] = []
        defer {
            for lane in lanes { drop(lane) }
            for job in backlog { end(job, false) }
        }
        while true {
            let (taken, newLanes, isClosed): ([PipelineJob<Lane.Request>], [Opened], Bool) = lock.withLock {
                defer { incoming.removeAll(keepingCapacity: true); adopted.removeAll() }
                return (incoming, adopted, closed)
            }
            // Closures, not key paths: a key path into a generic type is built anew at each use.
            lanes += newLanes.map { $0.lane }
            if isClosed {
                for job in taken { end(job, false) }
                lock.withLock { laneCount = lanes.count }
                return
            }
            backlog += taken
            // Each request on the lane with the fewest in flight; none up: the blocking way.
            var waiting: [PipelineJob<Lane.Request>] = []
            for job in backlog {
                guard let lane = lanes.min(by: { $0.inFlight < $1.inFlight }) else { end(job, false); continue }
                guard lane.inFlight < depth else { waiting.append(job); continue }
                if !lane.start(job) { end(job, false) }
            }
            backlog = waiting
            // Poll the lanes and the wake pipe; with requests in flight, wake at least every
            // 100 ms so that the lanes time them out.
            var fds = [pollfd(fd: wake.fd, events: Int16(POLLIN), revents: 0)] + lanes.map { $0.pollRequest }
            let busy = lanes.contains { $0.inFlight > 0 }
            let mayWait: Bool = lock.withLock {
                laneCount = lanes.count
                sleeping = incoming.isEmpty && adopted.isEmpty && !closed
                return sleeping
            }
            let rc = poll(&fds, nfds_t(fds.count), mayWait ? (busy ? 100 : 1000) : 0)
            if mayWait { lock.withLock { sleeping = false } }
            if rc < 0 && errno != EINTR { Thread.sleep(forTimeInterval: 0.01) }
            if fds[0].revents != 0 { wake.drain() }
            // Service every lane, end what finished, shut down the lanes that failed.
            var failed: [Int] = []
            for (i, lane) in lanes.enumerated() {
                let revents = fds[i + 1].revents
                guard revents != 0 || lane.inFlight > 0 else { continue }
                let (alive, ended) = lane.service(revents)
                for (job, ok) in ended { end(job, ok) }
                if !alive || (revents & Int16(POLLERR | POLLHUP | POLLNVAL)) != 0 { failed.append(i) }
            }
            for i in failed.reversed() { drop(lanes.remove(at: i)) }
            if !failed.isEmpty {
                lock.withLock { laneCount = lanes.count }
                openLanes()
            }
        }
    }
}
