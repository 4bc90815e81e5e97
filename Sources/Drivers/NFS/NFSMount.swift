import CNFS
import Foundation
import RemoteStorage
import SMCore

/// One process's way to an NFS export: a small pool of connections (made as concurrent
/// callers need them) and the hold policy. Every operation runs on a connection of its own;
/// when the server stops answering, idempotent operations (reads, writes at an offset,
/// truncate, commit, lookups) reconnect and are sent again until the policy gives up, so that a
/// server restart costs a pause, not an error.
public final class NFSMount: @unchecked Sendable {
    /// The export and how to reach it.
    public let target: NFSTarget
    /// The most one READ or WRITE RPC carries, as the server said at the mount (0: unknown).
    let transferSize: Int
    private let condition = NSCondition()
    private var idle: [NFSConnection] = []
    private var opened = 0
    private var nextStore: UInt64 = 0
    /// Operations waiting for the server, for the data path's stats.
    private let outage = OutageTracker()
    /// Stores closed while some connection was in use (their handles there go at check-in).
    private var retired: Set<UInt64> = []

    /// Mounts `target`'s export (one connection at once, so that an unreachable server or a
    /// refused path fails here).
    public init(target: NFSTarget) throws {
        self.target = target
        let first = NFSConnection(target: target)
        try first.connect()
        transferSize = first.asyncContext.map { Int(min(nfs_get_readmax($0), nfs_get_writemax($0))) } ?? 0
        idle = [first]
        opened = 1
    }

    /// A new identity for a store's handles.
    func newStoreID() -> UInt64 {
        condition.withLock { nextStore += 1; return nextStore }
    }

    /// Whether some operation is waiting for the server to come back, and since when.
    public var holding: (since: Date, operations: Int)? {
        outage.holding
    }

    /// How many operations have had to wait for the server since the mount was made.
    public var heldOperations: UInt64 { outage.heldOperations }

    /// Runs `body` on a connection of its own. A transport failure is retried on a new
    /// connection while the hold policy allows it (`idempotent` operations only; the others
    /// follow the soft policy, since their first attempt may have been carried out).
    func perform<T>(_ operation: String, idempotent: Bool = true, _ body: (NFSConnection) throws -> T) throws -> T {
        let connection = checkOut()
        defer { checkIn(connection) }
        let started = Date()
        var attempts = 0
        var holdingHere = false
        defer { if holdingHere { outage.end() } }
        while true {
            do {
                if !connection.isConnected {
                    // The export mounted before: a refusal while it comes back is part of the outage.
                    do { try connection.connect() } catch let e as NFSError {
                        throw NFSError.transport(operation: "reconnect", reason: e.description)
                    }
                }
                return try body(connection)
            } catch let error as NFSError {
                switch error {
                case .transport, .unreachable: break
                default: throw error
                }
                attempts += 1
                guard target.hold.allowsRetry(after: started, attempts: attempts, softAttempts: target.retrans, idempotent: idempotent) else {
                    throw NFSError.transport(operation: operation, reason: "\(error)")
                }
                if !holdingHere { holdingHere = true; outage.begin() }
                connection.disconnect()
                // A refused connection answers at once: do not spin while the server is down.
                Thread.sleep(forTimeInterval: HoldPolicy.backoff(attempts: attempts))
            }
        }
    }




    /// An idle connection, a new one while fewer than `target.connections` are open, else the
    /// next one handed back.
    private func checkOut() -> NFSConnection {
        condition.lock()
        while idle.isEmpty && opened >= target.connections { condition.wait() }
        if let c = idle.popLast() { condition.unlock(); return c }
        opened += 1
        condition.unlock()
        // Connected by `perform`, which holds through an outage as the policy says.
        return NFSConnection(target: target)
    }

    private func checkIn(_ connection: NFSConnection) {
        condition.withLock {
            connection.close(stores: retired)
            idle.append(connection)
            condition.signal()
        }
    }

    /// Closes store `id`'s handles: at once on the idle connections, and on the others when
    /// they are handed back.
    func closeHandles(store id: UInt64) {
        condition.withLock {
            retired.insert(id)
            for c in idle { c.close(stores: [id]) }
        }
    }

    /// FSSTAT of the file system holding `path` on the export.
    public func statistics(_ path: String) throws -> FileSystemStatistics {
        try perform("fsstat \(path)") { c in
            try c.with("fsstat") { ctx in
                var s = nfs_statvfs_64()
                try c.check(nfs_statvfs64(ctx, path, &s), "fsstat", path)
                let unit = max(1, s.f_frsize)
                return FileSystemStatistics(size: s.f_blocks * unit, free: s.f_bfree * unit, available: s.f_bavail * unit)
            }
        }
    }
}
