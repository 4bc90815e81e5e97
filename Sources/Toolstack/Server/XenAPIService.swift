import Foundation
import Logging
import XenAPIWire

/// The XenAPI as toolstackd serves it: sessions, object records, storage through SMAPIv1,
/// tasks and events. Calls block (a storage call waits for its plugin), so each runs on its own
/// thread; the plugin's callbacks arrive as further calls meanwhile.
public final class XenAPIService: @unchecked Sendable {
    /// The database.
    public let db: ObjectDatabase
    /// The configuration.
    public let configuration: ToolstackConfiguration
    /// Runs SMAPIv1 plugins.
    public let plugins: SMPluginRunner
    /// The log.
    public let log: Logger
    /// This host's reference.
    public private(set) var hostRef = ObjectRef.null
    /// The pool's reference.
    public private(set) var poolRef = ObjectRef.null
    /// Whether other hosts share the database (each call then first applies their changes).
    private let shared: Bool
    /// The TCP port the NBD server listens on, once it does (what `VDI.get_nbd_info` reports).
    public internal(set) var nbdPort: Int? {
        get { locked(nbdPortLock) { nbdPortValue } }
        set { locked(nbdPortLock) { nbdPortValue = newValue } }
    }
    private var nbdPortValue: Int?
    private let nbdPortLock = NSLock()
    /// VBDs plugged for NBD connections, by VDI reference: the VBD and how many connections use it.
    var nbdAttachments: [String: (vbd: String, users: Int)] = [:]
    /// Serialises attaching and releasing VDIs for NBD connections.
    let nbdLock = NSLock()
    /// The running `Async.` tasks' cancellation states, by task reference.
    private var taskControls: [String: TaskControl] = [:]
    private let taskControlsLock = NSLock()

    /// The cancellation state of running task `ref`, if it is one of ours.
    func control(_ ref: String?) -> TaskControl? {
        guard let ref else { return nil }
        return locked(taskControlsLock) { taskControls[ref] }
    }

    private func register(_ ref: String, _ control: TaskControl?) {
        locked(taskControlsLock) { taskControls[ref] = control }
    }

    /// A service over `db`, bootstrapping the pool, this host and its control domain on first start,
    /// recovering what a crash left (tasks in flight fail, operations in progress are cleared).
    public init(db: ObjectDatabase, configuration: ToolstackConfiguration, log: Logger) throws {
        self.db = db
        self.configuration = configuration
        self.log = log
        self.shared = db.store.isShared
        self.plugins = SMPluginRunner(smDirectory: configuration.smDirectory, runDirectory: configuration.runDirectory,
                                      socketPath: configuration.socketPath, pluginDirectory: configuration.pluginDirectory)
        try bootstrap()
        // A cancel asked through another host of the pool for a task running here.
        db.observeRemoteChanges { [weak self] changes in
            for change in changes where change.cls == "task" && change.record?.map("current_operations").values.contains("cancel") == true {
                _ = self?.control(change.ref)?.cancel()
            }
        }
    }

    /// Answers one call: the `Value` of a success or the failure.
    public func handle(method: String, params: [XMLRPCValue], transport: Transport) -> Result<XMLRPCValue, APIFailure> {
        // Read through in a pool: what other hosts committed before this call is seen by it.
        if shared { db.syncRemoteChanges() }
        do {
            return .success(try dispatch(method: method, params: params, transport: transport))
        } catch let failure as APIFailure {
            return .failure(failure)
        } catch {
            log.error("\(method): \(error)")
            return .failure(.internalError("\(error)"))
        }
    }

    private func dispatch(method: String, params: [XMLRPCValue], transport: Transport) throws -> XMLRPCValue {
        if method == "session.login_with_password" || method == "session.slave_local_login_with_password" {
            return try login(method: method, params: params, transport: transport)
        }
        let isAsync = method.hasPrefix("Async.")
        let name = isAsync ? String(method.dropFirst("Async.".count)) : method
        guard name.contains("."), let session = params.first?.stringValue else {
            if params.isEmpty, name.contains(".") { throw APIFailure.sessionInvalid("") }
            throw APIFailure.unknownMethod(method)
        }
        try checkSession(session)
        var call = APICall(method: name, session: session, args: Array(params.dropFirst()))
        guard let handler = try handler(for: call) else { throw APIFailure.unknownMethod(method) }
        if isAsync {
            let task = try createTask(name: "Async.\(name)", session: session, cancellable: true)
            call.task = task
            let asyncCall = call
            let control = TaskControl()
            register(task, control)
            Thread { [self] in
                // A task cancelled before its work started never runs it.
                if control.start() { finishTask(task, Result { try handler(asyncCall) }) }
                register(task, nil)
            }.start()
            return .string(task)
        }
        return try handler(call)
    }

    /// A call's implementation.
    typealias Handler = @Sendable (APICall) throws -> XMLRPCValue

    private func handler(for call: APICall) throws -> Handler? {
        if let special = specialHandler(call) { return special }
        guard let spec = DataModel.spec(call.className) else { return nil }
        return genericHandler(spec, call.message)
    }

    /// Handlers of the messages that are more than field access.
    private func specialHandler(_ call: APICall) -> Handler? {
        switch call.method {
        case "session.logout": return { [self] c in try logout(c) }
        case "session.get_this_host": return { [self] c in try c.arity(1); return .string(hostRef) }
        case "session.local_logout": return { [self] c in try logout(c) }
        case "event.from": return { [self] c in try eventFrom(c) }
        case "event.get_current_id": return { [self] c in try c.arity(0); return .string(String(db.currentToken)) }
        case "task.cancel": return { [self] c in try cancelTask(c) }
        case "task.destroy": return { [self] c in try destroyTask(c) }
        case "task.create": return { [self] c in
            try c.arity(2)
            let t = try createTask(name: try c.string(0, "label"), session: c.session, cancellable: true)
            try db.write { txn in try txn.update("task", t) { $0.fields["name_description"] = .string(try c.string(1, "description")) } }
            return .string(t)
        }
        case "message.create": return { [self] c in try createMessage(c) }
        case "VDI.get_nbd_info": return { [self] c in try vdiGetNBDInfo(c) }
        case "host.get_server_certificate": return { [self] c in try hostServerCertificate(c) }
        default: return storageHandler(call)
        }
    }

    // MARK: - Bootstrap

    private func bootstrap() throws {
        // This host's identity is kept in the state directory, so that daemons sharing one
        // database (a pool on PostgreSQL) each find their own host record.
        let idFile = configuration.stateDirectory + "/host-uuid"
        let known = (try? String(contentsOfFile: idFile, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
        let shared = db.store.isShared
        try db.write { txn in
            if let pool = txn.all("pool").first {
                poolRef = pool.ref
                let hosts = txn.all("host")
                if let known, let host = hosts.first(where: { $0.uuid == known }) {
                    hostRef = host.ref
                } else if known == nil, !shared, hosts.count == 1 {
                    hostRef = hosts[0].ref   // a state directory from before the identity file
                } else {
                    // A new host joining the pool.
                    let host = Self.newHost(configuration)
                    txn.put(host)
                    txn.put(Self.controlDomain(configuration, host: host.ref))
                    hostRef = host.ref
                }
            } else {
                let host = Self.newHost(configuration)
                let pool = ObjectRecord(DataModel.pool, ["master": .string(host.ref)])
                txn.put(host)
                txn.put(pool)
                txn.put(Self.controlDomain(configuration, host: host.ref))
                poolRef = pool.ref
                hostRef = host.ref
            }
            // The management network and this host's interface on it (where NBD clients connect).
            if !txn.whereField("PIF", "host", is: hostRef).contains(where: { $0.bool("management") }) {
                let network = txn.whereField("network", "bridge", is: "xenbr0").first ?? ObjectRecord(DataModel.network, [
                    "name_label": .string("Pool-wide network associated with eth0"), "bridge": .string("xenbr0"),
                ])
                let pif = ObjectRecord(DataModel.pif, [
                    "device": .string("eth0"), "network": .string(network.ref), "host": .string(hostRef),
                    "physical": .boolean(true), "currently_attached": .boolean(true), "management": .boolean(true),
                    "ip_configuration_mode": .string("Static"), "IP": .string(configuration.address),
                    "MTU": .string("1500"),
                ])
                txn.put(network)
                txn.put(pif)
            }
            // The address given at this start is the host's (and its management interface's).
            for var pif in txn.whereField("PIF", "host", is: hostRef) where pif.bool("management") && pif.string("IP") != configuration.address {
                pif.fields["IP"] = .string(configuration.address)
                txn.put(pif)
            }
            try txn.update("host", hostRef) { h in
                if h.string("address") != configuration.address { h.fields["address"] = .string(configuration.address) }
            }
            // Crash recovery: nothing this host ran is in progress after a restart (other hosts'
            // tasks, operations and sessions are theirs).
            let mine = Set(txn.whereField("task", "resident_on", is: hostRef).map(\.ref))
            for task in txn.all("task") where mine.contains(task.ref) && (task.string("status") == "pending" || task.string("status") == "cancelling") {
                var t = task
                t.fields["status"] = .string("failure")
                t.fields["error_info"] = .array(["INTERNAL_ERROR", "toolstackd restarted while the task was running"])
                t.fields["finished"] = .dateTime(XenAPITime.string())
                t.fields["allowed_operations"] = .array([])
                txn.put(t)
            }
            for cls in ["SR", "VDI", "VBD", "host", "VM", "VIF"] {
                guard let spec = DataModel.classes[cls] else { continue }
                for r in txn.all(cls) where !r.map("current_operations").isEmpty {
                    var fixed = r
                    let kept = r.map("current_operations").filter { shared && !mine.contains($0.key) }
                    fixed.setMap("current_operations", kept)
                    if kept.isEmpty { fixed.fields["allowed_operations"] = .array(spec.operations.map { .string($0) }) }
                    txn.put(fixed)
                }
            }
            for s in txn.all("session") where !shared || s.string("this_host") == hostRef { txn.delete("session", s.ref) }
        }
        if known == nil { try? db.read { v in v.find("host", hostRef)?.uuid ?? "" }.write(toFile: idFile, atomically: true, encoding: .utf8) }
    }

    /// This host's record as first made.
    private static func newHost(_ configuration: ToolstackConfiguration) -> ObjectRecord {
        ObjectRecord(DataModel.host, [
            "name_label": .string(configuration.hostname), "hostname": .string(configuration.hostname),
            "address": .string(configuration.address),
            "software_version": .struct([XMLRPCMember("product_brand", "SwiftSM"), XMLRPCMember("product_version", "0.1.0")]),
        ])
    }

    /// The control domain of host `host`.
    private static func controlDomain(_ configuration: ToolstackConfiguration, host: String) -> ObjectRecord {
        ObjectRecord(DataModel.vm, [
            "name_label": .string("Control domain on host: \(configuration.hostname)"),
            "is_control_domain": .boolean(true), "power_state": .string("Running"),
            "resident_on": .string(host), "domid": .string("0"),
        ])
    }

    // MARK: - Sessions

    private func login(method: String, params: [XMLRPCValue], transport: Transport) throws -> XMLRPCValue {
        guard (2...4).contains(params.count) else {
            throw APIFailure.arity(method, expected: 4, received: params.count)
        }
        guard let user = params[0].stringValue, let password = params[1].stringValue else { throw APIFailure.fieldType("uname") }
        let originator = params.count == 4 ? params[3].stringValue ?? "" : ""
        try authenticate(user: user, password: password, transport: transport)
        return .string(try createSession(user: user, originator: originator))
    }

    /// Checks `user`'s `password` (root over the local socket is trusted, as xapi trusts it):
    /// `SESSION_AUTHENTICATION_FAILED` when it does not hold.
    func authenticate(user: String, password: String, transport: Transport) throws {
        let trusted = transport == .local && user == "root"
        let checked = user == "root" && configuration.rootPasswordHash.map { PasswordHash.verify(password, hash: $0) } == true
        guard trusted || checked else {
            log.notice("login refused for user \(user) over \(transport)")
            throw APIFailure("SESSION_AUTHENTICATION_FAILED", user, "Authentication failure")
        }
    }

    /// A new session record for `user`; its reference.
    func createSession(user: String, originator: String) throws -> String {
        let now = XenAPITime.string()
        let s = ObjectRecord(DataModel.session, [
            "this_host": .string(hostRef), "last_active": .dateTime(now), "validation_time": .dateTime(now),
            "is_local_superuser": .boolean(user == "root"), "auth_user_name": .string(user),
            "originator": .string(originator),
        ])
        try db.write { txn in txn.put(s) }
        return s.ref
    }

    /// Ends a session.
    func destroySession(_ ref: String) {
        _ = try? db.write { txn in if txn.find("session", ref) != nil { txn.delete("session", ref) } }
    }

    private func checkSession(_ ref: String) throws {
        guard db.read({ $0.find("session", ref) }) != nil else { throw APIFailure.sessionInvalid(ref) }
    }

    private func logout(_ c: APICall) throws -> XMLRPCValue {
        try c.arity(0)
        destroySession(c.session)
        return .string("")
    }
}
