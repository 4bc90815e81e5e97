import CISCSI
import Foundation
import RemoteStorage

/// One libiscsi context logged in to a target over one portal: one TCP connection, one
/// session, used by one thread at a time (a pool hands it out). Commands are sent with
/// libiscsi's asynchronous calls and driven by this connection's own poll loop, so that several
/// of one request's commands are in flight together, libiscsi's timeouts are serviced, and a
/// lost connection is reported at once (libiscsi's own reconnection is off: reconnecting is the
/// pool's job, under its hold policy).
final class ISCSIConnection: @unchecked Sendable {
    /// Where and how it logs in.
    let target: ISCSITarget
    /// The index in `target.portals` of the path it uses.
    var path: Int
    private var context: OpaquePointer?
    /// Calls started on the current context whose callback may still run (kept alive until the
    /// context is destroyed, which cancels them).
    private var outstanding: [ISCSICompletion] = []
    /// Most commands one request keeps in flight on the connection.
    static let queueDepth = 8
    /// This connection's initiator session id (random type: 22 bits and a 16-bit qualifier),
    /// kept across its reconnections: a new login with the same ISID is a session
    /// reinstatement (RFC 7143 §6.3.5), which tells the target to end the old session and its
    /// tasks, so a command of a session given up for dead cannot run after it was sent again.
    let isid = (random: UInt32.random(in: 0..<(1 << 22)), qualifier: UInt32.random(in: 0..<(1 << 16)))

    /// A connection to `target` over portal `path`, made by the first `connect()`.
    init(target: ISCSITarget, path: Int) {
        self.target = target
        self.path = path
    }

    deinit { disconnect() }

    /// The portal of this connection's path.
    var portal: ISCSIPortal { target.portals[path] }

    /// Whether a session is logged in.
    var isConnected: Bool { context != nil }

    /// Drops the session (no logout: the target cleans up a closed connection) and every call
    /// still in flight on it.
    func disconnect() {
        guard let ctx = context else { return }
        context = nil
        iscsi_destroy_context(ctx)
        for c in outstanding { c.release() }
        outstanding.removeAll()
    }

    // MARK: Login

    /// Makes a new context and logs in: a normal session to `target.iqn`, or a discovery
    /// session when `discovery` is true. Throws `.unreachable`, `.login`, `.targetNotFound`.
    func connect(discovery: Bool = false) throws {
        disconnect()
        guard let ctx = target.initiatorIQN.withCString({ iscsi_create_context($0) }) else {
            throw ISCSIError.unreachable(portal: portal.description, reason: "no libiscsi context")
        }
        context = ctx
        do {
            try configure(ctx, discovery: discovery)
            let connect = ISCSICompletion()
            outstanding.append(connect)
            let rc = portal.description.withCString { iscsi_connect_async(ctx, $0, ISCSICompletion.callback, connect.opaque) }
            guard rc == 0 else { throw ISCSIError.unreachable(portal: portal.description, reason: message()) }
            try drive(until: { connect.done }, deadline: Date().addingTimeInterval(Double(target.timeoutSeconds)))
            guard connect.status == 0 else { throw ISCSIError.unreachable(portal: portal.description, reason: message()) }
            let login = ISCSICompletion()
            outstanding.append(login)
            guard iscsi_login_async(ctx, ISCSICompletion.callback, login.opaque) == 0 else { throw loginError() }
            try drive(until: { login.done }, deadline: Date().addingTimeInterval(Double(target.timeoutSeconds)))
            guard login.status == 0, iscsi_is_logged_in(ctx) != 0 else { throw loginError() }
            outstanding.removeAll { $0 === login }
        } catch let e as ISCSIError {
            disconnect()
            switch e {
            case let .transport(_, reason), let .unreachable(_, reason):
                let why = TCPProbe.failure(host: portal.host, port: portal.port, timeout: min(5, Double(target.timeoutSeconds))) ?? reason
                if why.hasPrefix(TCPProbe.unresolved) { throw ISCSIError.badTarget(portal.host) }
                throw ISCSIError.unreachable(portal: portal.description, reason: why)
            default: throw e
            }
        }
    }

    /// Session parameters: type, target name, digests, CHAP, timeouts, no reconnection of its own.
    private func configure(_ ctx: OpaquePointer, discovery: Bool) throws {
        iscsi_set_noautoreconnect(ctx, 1)
        iscsi_set_isid_random(ctx, isid.random, isid.qualifier)
        iscsi_set_timeout(ctx, Int32(target.timeoutSeconds))
        iscsi_set_tcp_user_timeout(ctx, Int32(target.timeoutSeconds * 1000))
        iscsi_set_tcp_keepalive(ctx, 5, 3, 2)
        iscsi_set_session_type(ctx, discovery ? ISCSI_SESSION_DISCOVERY : ISCSI_SESSION_NORMAL)
        iscsi_set_header_digest(ctx, target.headerDigest ? ISCSI_HEADER_DIGEST_CRC32C_NONE : ISCSI_HEADER_DIGEST_NONE_CRC32C)
        if !discovery {
            guard let iqn = target.iqn else { throw ISCSIError.missingParameter("targetIQN") }
            guard iqn.withCString({ iscsi_set_targetname(ctx, $0) }) == 0 else { throw ISCSIError.badIQN(iqn) }
        }
        if let chap = target.chap {
            let rc = chap.user.withCString { u in chap.secret.withCString { iscsi_set_initiator_username_pwd(ctx, u, $0) } }
            guard rc == 0 else { throw ISCSIError.login(portal: portal.description, iqn: target.iqn ?? "*", reason: "bad CHAP user") }
            if let tu = chap.targetUser, let ts = chap.targetSecret {
                let rc = tu.withCString { u in ts.withCString { iscsi_set_target_username_pwd(ctx, u, $0) } }
                guard rc == 0 else {
                    throw ISCSIError.login(portal: portal.description, iqn: target.iqn ?? "*", reason: "bad mutual CHAP user")
                }
            }
        }
    }

    /// The typed error of a refused login: an unknown target name, a refusal (authentication,
    /// authorisation), or no iSCSI service at all behind the port.
    private func loginError() -> ISCSIError {
        let reason = message()
        let iqn = target.iqn ?? "*"
        if reason.contains("Target not found") || reason.contains("(515)") || reason.contains("Target removed") {
            return .targetNotFound(portal: portal.description, iqn: iqn)
        }
        if reason.contains("Status:") || reason.contains("CHAP") || reason.contains("uthentication") || reason.contains("uthorization") {
            return .login(portal: portal.description, iqn: iqn, reason: reason)
        }
        return .unreachable(portal: portal.description, reason: reason)
    }

    /// libiscsi's text for the context's last error, with any secret taken out.
    private func message() -> String {
        guard let ctx = context, let p = iscsi_get_error(ctx) else { return "unknown error" }
        let text = String(cString: p)
        return target.redact(text.isEmpty ? "unknown error" : text)
    }

    // MARK: The poll loop

    /// Services the connection until `finished()` or the deadline; a failed socket or a
    /// deadline passed throws `.transport` (the caller then drops the connection).
    private func drive(until finished: () -> Bool, deadline: Date? = nil) throws {
        guard let ctx = context else { throw ISCSIError.transport(operation: "poll", reason: "not connected") }
        while !finished() {
            if let deadline, Date() > deadline {
                throw ISCSIError.transport(operation: "poll", reason: "no answer within \(target.timeoutSeconds) s")
            }
            let events = iscsi_which_events(ctx)
            if events == 0 { usleep(100_000); _ = iscsi_service(ctx, 0); continue }
            var pfd = pollfd(fd: iscsi_get_fd(ctx), events: Int16(truncatingIfNeeded: events), revents: 0)
            let rc = poll(&pfd, 1, 1000)
            if rc < 0 {
                if errno == EINTR { continue }
                throw ISCSIError.transport(operation: "poll", reason: String(cString: strerror(errno)))
            }
            if iscsi_service(ctx, rc == 0 ? 0 : Int32(pfd.revents)) < 0 {
                throw ISCSIError.transport(operation: "poll", reason: message())
            }
        }
    }

    // MARK: Commands

    /// A SCSI command started by `start` (which returns the task of a libiscsi `*_task` call),
    /// sent with up to `queueDepth` others.
    struct Command {
        /// What it is, for error texts.
        var name: String
        /// Starts it on the context with the completion's callback and opaque pointer.
        var start: (OpaquePointer, ISCSICompletion) -> UnsafeMutablePointer<scsi_task>?
        /// Runs on the finished task (GOOD status) before it is freed.
        var finish: (UnsafeMutablePointer<scsi_task>) throws -> Void = { _ in }
    }

    /// Runs `command` and returns what `finish` made of it. UNIT ATTENTION, BUSY, TASK SET
    /// FULL and NOT READY are retried (a few times, briefly): the first commands after a
    /// target restart meet them.
    func run(_ command: Command) throws {
        try runAll([command])
    }

    /// Runs `commands` with up to `queueDepth` in flight at once; throws the first failure
    /// (a transport failure drops the connection).
    func runAll(_ commands: [Command]) throws {
        guard context != nil else { throw ISCSIError.transport(operation: commands.first?.name ?? "command", reason: "not connected") }
        var next = 0
        var inFlight: [(index: Int, completion: ISCSICompletion, tries: Int)] = []
        var failure: ISCSIError?
        do {
            while next < commands.count || !inFlight.isEmpty {
                while failure == nil && next < commands.count && inFlight.count < Self.queueDepth {
                    inFlight.append((next, try start(commands[next]), 0))
                    next += 1
                }
                if inFlight.isEmpty { break }
                try drive(until: { inFlight.contains { $0.completion.done } })
                var still: [(index: Int, completion: ISCSICompletion, tries: Int)] = []
                for entry in inFlight {
                    guard entry.completion.done else { still.append(entry); continue }
                    let c = entry.completion
                    outstanding.removeAll { $0 === c }
                    defer { c.release() }
                    let command = commands[entry.index]
                    switch outcome(c, command.name) {
                    case .good:
                        if let task = c.task, failure == nil {
                            do { try command.finish(task) } catch let e as ISCSIError { failure = failure ?? e }
                        }
                    case .retry where entry.tries < 20 && failure == nil:
                        usleep(UInt32(min(200_000, 10_000 << min(entry.tries, 4))))
                        still.append((entry.index, try start(command), entry.tries + 1))
                    case .retry:
                        failure = failure ?? scsiError(c, command.name)
                    case let .failed(e):
                        if e.isTransport { throw e }
                        failure = failure ?? e
                    }
                }
                inFlight = still
            }
        } catch let e as ISCSIError {
            disconnect()
            if case let .transport(op, reason) = e, op == "poll" {
                throw ISCSIError.transport(operation: commands.first?.name ?? "command", reason: reason)
            }
            throw e
        }
        if let failure { throw failure }
    }

    private func start(_ command: Command) throws -> ISCSICompletion {
        guard let ctx = context else { throw ISCSIError.transport(operation: command.name, reason: "not connected") }
        let c = ISCSICompletion()
        guard let task = command.start(ctx, c) else {
            c.release()
            throw ISCSIError.transport(operation: command.name, reason: message())
        }
        c.task = task
        outstanding.append(c)
        return c
    }

    private enum Outcome { case good, retry, failed(ISCSIError) }

    private func outcome(_ c: ISCSICompletion, _ name: String) -> Outcome {
        let status = Int(c.status)
        switch status {
        case SCSISense.good: return .good
        case SCSISense.busy, SCSISense.taskSetFull: return .retry
        case SCSISense.checkCondition:
            let key = Int(c.task?.pointee.sense.key.rawValue ?? 0)
            let ascq = Int(c.task?.pointee.sense.ascq ?? 0)
            if key == SCSISense.unitAttention || key == SCSISense.abortedCommand { return .retry }
            // NOT READY, becoming ready (ASC 04h, ASCQ 01h).
            if key == SCSISense.notReady && ascq == 0x0401 { return .retry }
            return .failed(scsiError(c, name))
        case Int(SCSI_STATUS_ERROR.rawValue), Int(SCSI_STATUS_TIMEOUT.rawValue), Int(SCSI_STATUS_CANCELLED.rawValue):
            let why = status == Int(SCSI_STATUS_TIMEOUT.rawValue) ? "timed out" : message()
            return .failed(.transport(operation: name, reason: why))
        default:
            return .failed(scsiError(c, name))
        }
    }

    private func scsiError(_ c: ISCSICompletion, _ name: String) -> ISCSIError {
        .scsi(operation: name, status: Int(c.status), senseKey: Int(c.task?.pointee.sense.key.rawValue ?? 0),
              ascq: Int(c.task?.pointee.sense.ascq ?? 0))
    }

    /// The data-in of a finished task, copied.
    static func dataIn(_ task: UnsafeMutablePointer<scsi_task>) -> [UInt8] {
        let d = task.pointee.datain
        guard let p = d.data, d.size > 0 else { return [] }
        return Array(UnsafeBufferPointer(start: p, count: Int(d.size)))
    }

    // MARK: Pipelined use (`ISCSIPipeline`)

    /// What to poll for this connection (nil when not connected): its socket and the events
    /// libiscsi waits for.
    var pollRequest: pollfd? {
        guard let ctx = context else { return nil }
        return pollfd(fd: iscsi_get_fd(ctx), events: Int16(truncatingIfNeeded: iscsi_which_events(ctx)), revents: 0)
    }

    /// Lets libiscsi read, write and check its timeouts after poll reported `revents` (0: only
    /// the timeouts); false when the connection failed (the caller drops it).
    func service(_ revents: Int16) -> Bool {
        guard let ctx = context else { return false }
        return iscsi_service(ctx, Int32(revents)) >= 0
    }

    /// Starts `command` without waiting for it; `end` takes its result once it is `done`.
    func begin(_ command: Command) throws -> ISCSICompletion {
        try start(command)
    }

    /// Ends a call started by `begin` that is `done`: nil when it succeeded, else why (a status
    /// the blocking path retries, such as UNIT ATTENTION, counts as a failure here too).
    func end(_ c: ISCSICompletion, _ name: String) -> ISCSIError? {
        outstanding.removeAll { $0 === c }
        defer { c.release() }
        switch outcome(c, name) {
        case .good: return nil
        case .retry: return scsiError(c, name)
        case let .failed(e): return e
        }
    }

    // MARK: Discovery

    /// SendTargets on a discovery session (made by `connect(discovery: true)`).
    func sendTargets() throws -> [ISCSIDiscoveredTarget] {
        guard let ctx = context else { throw ISCSIError.transport(operation: "SendTargets", reason: "not connected") }
        let c = ISCSICompletion()
        outstanding.append(c)
        guard iscsi_discovery_async(ctx, ISCSICompletion.discoveryCallback, c.opaque) == 0 else {
            throw ISCSIError.discovery(portal: portal.description, reason: message())
        }
        do {
            try drive(until: { c.done }, deadline: Date().addingTimeInterval(Double(target.timeoutSeconds)))
        } catch let e as ISCSIError {
            disconnect()
            throw ISCSIError.discovery(portal: portal.description, reason: "\(e)")
        }
        outstanding.removeAll { $0 === c }
        guard c.status == 0 else { throw ISCSIError.discovery(portal: portal.description, reason: message()) }
        return c.discovered
    }
}
