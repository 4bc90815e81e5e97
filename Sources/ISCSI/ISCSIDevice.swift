import Foundation
import RemoteStorage

/// One process's way to one LUN: a pool of sessions over the target's paths (portals), made as
/// concurrent callers need them, and the hold policy. Every request runs on a session of its
/// own. When a session fails, the request goes again on a path that works (multipath in user
/// space); when none works, idempotent requests (READ, WRITE at an LBA, SYNCHRONIZE CACHE,
/// UNMAP) reconnect and are sent again until the policy gives up, so that a target restart
/// costs a pause, not an error. Failed paths are retried in the background. Every path must
/// lead to the same LUN (the same SCSI id).
public final class ISCSIDevice: @unchecked Sendable {
    /// The target and how to reach it.
    public let target: ISCSITarget
    /// The LUN as it was when opened.
    public let info: ISCSILUNInfo
    private let condition = NSCondition()
    private var idle: [ISCSIConnection] = []
    private var opened = 0
    private var pathUp: [Bool]
    private var nextPath = 0
    /// Operations waiting for the server, for the data path's stats.
    private let outage = OutageTracker()
    private var reconnectCount: UInt64 = 0
    private var closed = false
    /// The pipeline of READs and WRITEs, made at first use.
    private var pipelineValue: ISCSIPipeline?

    /// Logs in on the first portal that lets it (an unreachable one is skipped; a refused login
    /// is the error when no portal works), finds the LUN (by `target.lun`, else by
    /// `target.scsiID`, else the first disk), then opens one session on every other path and
    /// checks that it leads to the same LUN; paths that fail now are retried in the background.
    public init(target: ISCSITarget) throws {
        guard !target.portals.isEmpty else { throw ISCSIError.missingParameter("target") }
        self.target = target
        var failure: ISCSIError?
        var first: ISCSIConnection?
        for path in target.portals.indices {
            let c = ISCSIConnection(target: target, path: path)
            do {
                try c.connect()
                first = c
                break
            } catch let e as ISCSIError {
                if failure == nil || (failure!.isTransport && !e.isTransport) { failure = e }
            }
        }
        guard let first else { throw failure ?? ISCSIError.unreachable(portal: "\(target.portals)", reason: "no portal") }
        info = try Self.findLUN(on: first, target: target)
        pathUp = Array(repeating: false, count: target.portals.count)
        pathUp[first.path] = true
        idle = [first]
        opened = 1
        for path in target.portals.indices where path != first.path {
            let c = ISCSIConnection(target: target, path: path)
            if (try? connectChecked(c)) != nil {
                pathUp[path] = true
                idle.append(c)
                opened += 1
            }
        }
        if target.portals.count > 1 { startPathRetry() }
    }

    deinit { close() }

    /// Stops the background path checks and drops the idle sessions (sessions in use go when
    /// they are handed back).
    public func close() {
        condition.withLock {
            closed = true
            pipelineValue?.close()
            pipelineValue = nil
            for c in idle { c.disconnect() }
            idle.removeAll()
            condition.broadcast()
        }
    }

    /// The LUN `target` names on connection `c`.
    private static func findLUN(on c: ISCSIConnection, target: ISCSITarget) throws -> ISCSILUNInfo {
        let iqn = target.iqn ?? "*"
        if let lun = target.lun {
            let info: ISCSILUNInfo
            do { info = try c.lunInfo(lun: lun) } catch let e as ISCSIError {
                if case let .scsi(_, _, key, _) = e, key == SCSISense.illegalRequest { throw ISCSIError.lunNotFound(iqn: iqn, lun: "\(lun)") }
                throw e
            }
            guard info.inquiry.isDisk else { throw ISCSIError.lunNotFound(iqn: iqn, lun: "\(lun)") }
            if let want = target.scsiID, want != info.scsiID { throw ISCSIError.scsiIDMismatch(expected: want, found: info.scsiID) }
            return info
        }
        let disks = try c.disks()
        if let want = target.scsiID {
            guard let d = disks.first(where: { $0.scsiID == want }) else { throw ISCSIError.lunNotFound(iqn: iqn, lun: "with SCSIid \(want)") }
            return d
        }
        guard let d = disks.first else { throw ISCSIError.lunNotFound(iqn: iqn, lun: "(the target offers no disk)") }
        return d
    }

    /// Logs `c` in and checks that its path leads to this LUN (same SCSI id).
    private func connectChecked(_ c: ISCSIConnection) throws {
        try c.connect()
        do {
            let page = try c.vpd(lun: info.lun, page: 0x83)
            let id = SCSIDeviceIdentification(page).scsiID(inquiry: info.inquiry) ?? ""
            if !info.scsiID.hasPrefix("S") && id != info.scsiID {
                c.disconnect()
                throw ISCSIError.scsiIDMismatch(expected: info.scsiID, found: id)
            }
        } catch {
            c.disconnect()
            throw error
        }
    }

    /// The LUN number.
    public var lun: Int { info.lun }

    /// Throws `.lunTooSmall` (44) unless the LUN holds at least `bytes` (what an SR of that size
    /// needs).
    public func require(size bytes: UInt64) throws {
        guard info.size >= bytes else { throw ISCSIError.lunTooSmall(size: info.size, needed: bytes) }
    }

    /// Paths that work and paths there are (`[active, total]`, as multipath reports them).
    public var pathCount: (active: Int, total: Int) {
        condition.withLock { (pathUp.filter { $0 }.count, pathUp.count) }
    }

    /// Whether some request is waiting for the target to come back, and since when.
    public var holding: (since: Date, operations: Int)? {
        outage.holding
    }

    /// How many requests have had to wait for the target since the device was opened.
    public var heldOperations: UInt64 { outage.heldOperations }

    /// How many sessions were made again after a failure.
    public var reconnections: UInt64 { condition.withLock { reconnectCount } }

    /// Runs `body` on a session of its own. A lost session sends the request again on another
    /// working path at once; when there is none, it reconnects and sends it again while the
    /// hold policy allows (every request this library makes is idempotent).
    func perform<T>(_ operation: String, _ body: (ISCSIConnection) throws -> T) throws -> T {
        let c = try checkOut()
        defer { checkIn(c) }
        let started = Date()
        var attempts = 0
        var switches = 0
        var holdingHere = false
        defer { if holdingHere { outage.end() } }
        while true {
            do {
                if !c.isConnected {
                    do { try connectChecked(c) } catch let e as ISCSIError {
                        // The LUN was there before: a refusal while it comes back is part of the outage.
                        throw ISCSIError.transport(operation: "reconnect to \(target.portals[c.path])", reason: e.description)
                    }
                    condition.withLock { reconnectCount += 1; pathUp[c.path] = true }
                }
                return try body(c)
            } catch let error as ISCSIError where error.isTransport {
                c.disconnect()
                let other: Int? = condition.withLock {
                    pathUp[c.path] = false
                    return pathUp.indices.first { pathUp[$0] && $0 != c.path }
                }
                if let other, switches < target.portals.count {
                    switches += 1
                    c.path = other
                    continue
                }
                attempts += 1
                guard target.hold.allowsRetry(after: started, attempts: attempts, softAttempts: target.retries) else {
                    throw ISCSIError.transport(operation: operation, reason: "\(error)")
                }
                if !holdingHere { holdingHere = true; outage.begin() }
                // A refused connection answers at once: do not spin while the target is down.
                Thread.sleep(forTimeInterval: HoldPolicy.backoff(attempts: attempts))
                switches = 0
                c.path = condition.withLock {
                    pathUp.indices.first { pathUp[$0] } ?? (c.path + 1) % target.portals.count
                }
            }
        }
    }




    /// Requests the pipeline had answered GOOD, and requests it gave to the blocking path (a
    /// lost session, a timeout, a status to retry, no session up yet).
    public var pipelinedRequests: (answered: UInt64, fellBack: UInt64) {
        condition.withLock { pipelineValue }?.counts ?? (0, 0)
    }

    /// The pipeline that sends READs and WRITEs without a waiting thread (`ISCSIPipeline`), its
    /// lanes borrowed from this device's sessions; nil once the device is closed.
    var pipeline: ISCSIPipeline? {
        condition.withLock {
            guard !closed else { return nil }
            if let p = pipelineValue { return p }
            let p = ISCSIPipeline(lun: info.lun, blockSize: info.blockSize, paths: target.portals.count, open: { [weak self] in
                guard let self else { throw ISCSIError.transport(operation: "request", reason: "the device is closed") }
                let c = try self.checkOut()
                do {
                    if !c.isConnected { try self.connectChecked(c) }
                    return c
                } catch {
                    c.disconnect()
                    self.checkIn(c)
                    throw error
                }
            }, giveBack: { [weak self] c in
                if let self { self.checkIn(c) } else { c.disconnect() }
            })
            pipelineValue = p
            return p
        }
    }

    /// An idle session (one on a working path first), a new one on the next working path
    /// while fewer than `sessionsPerPath` × paths are open, else the next one handed back.
    private func checkOut() throws -> ISCSIConnection {
        condition.lock()
        defer { condition.unlock() }
        while true {
            if closed { throw ISCSIError.transport(operation: "request", reason: "the device is closed") }
            if let i = idle.lastIndex(where: { pathUp[$0.path] }) ?? (idle.isEmpty ? nil : idle.count - 1) {
                let c = idle.remove(at: i)
                if !pathUp[c.path], let up = pathUp.indices.first(where: { pathUp[$0] }) {
                    c.disconnect()
                    c.path = up
                }
                return c
            }
            if opened < target.sessionsPerPath * target.portals.count {
                opened += 1
                let ups = pathUp.indices.filter { pathUp[$0] }
                let path = ups.isEmpty ? 0 : ups[nextPath % ups.count]
                nextPath &+= 1
                // Logged in by `perform`, which holds through an outage as the policy says.
                return ISCSIConnection(target: target, path: path)
            }
            condition.wait()
        }
    }

    private func checkIn(_ c: ISCSIConnection) {
        condition.withLock {
            if closed { c.disconnect() }
            idle.append(c)
            condition.signal()
        }
    }

    /// Sends an INQUIRY on the least recently used idle session of every working path, as
    /// multipathd's path checker does: a path whose sessions died while idle (requests going
    /// to another path meanwhile) is counted down now, not when a request next picks it.
    private func checkIdlePaths() {
        let picked: [ISCSIConnection] = condition.withLock {
            var out: [ISCSIConnection] = []
            for path in pathUp.indices where pathUp[path] {
                if let i = idle.firstIndex(where: { $0.path == path && $0.isConnected }) { out.append(idle.remove(at: i)) }
            }
            return out
        }
        for c in picked {
            var failed = false
            do { _ = try c.inquiry(lun: info.lun) } catch let e as ISCSIError where e.isTransport { failed = true } catch {}
            if failed { c.disconnect() }
            condition.withLock {
                if failed { pathUp[c.path] = false }
                if closed { c.disconnect() }
                idle.append(c)
                condition.signal()
            }
        }
    }

    /// Every `pathRetrySeconds`, checks the paths in use and tries the paths that failed,
    /// putting those that work again back in use.
    private func startPathRetry() {
        let interval = target.pathRetrySeconds
        let thread = Thread { [weak self] in
            while true {
                Thread.sleep(forTimeInterval: interval)
                guard let self else { return }
                if !self.retryFailedPaths() { return }
            }
        }
        thread.name = "iscsi-path-retry"
        thread.start()
    }

    /// One round of path checks; false once the device is closed.
    private func retryFailedPaths() -> Bool {
        if condition.withLock({ closed }) { return false }
        checkIdlePaths()
        let down: [Int] = condition.withLock { closed ? [] : pathUp.indices.filter { !pathUp[$0] } }
        for path in down {
            let c = ISCSIConnection(target: target, path: path)
            guard (try? connectChecked(c)) != nil else { continue }
            condition.withLock {
                pathUp[path] = true
                if !closed && opened < target.sessionsPerPath * target.portals.count {
                    opened += 1
                    idle.append(c)
                    condition.signal()
                } else {
                    c.disconnect()
                }
            }
        }
        return true
    }
}
