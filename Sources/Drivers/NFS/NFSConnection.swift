import CNFS
import Foundation

/// One libnfs context mounted on the target's export: one TCP connection to the server, used
/// by one thread at a time (the pool hands it out). Files are opened on it lazily per store and
/// reopened after a reconnection.
final class NFSConnection: @unchecked Sendable {
    /// Where it is connected.
    let target: NFSTarget
    private var context: OpaquePointer?
    /// Open file handles, by store.
    private var handles: [UInt64: OpaquePointer] = [:]

    /// A connection to `target`'s export, made by the first `connect()`.
    init(target: NFSTarget) {
        self.target = target
    }

    deinit { disconnect() }

    /// Makes a new context and mounts the export (the old one, if any, is dropped with its handles).
    func connect() throws {
        disconnect()
        guard let ctx = nfs_init_context() else { throw NFSError.unreachable(server: target.server, reason: "no libnfs context") }
        nfs_set_timeout(ctx, Int32(target.timeoutSeconds * 1000))
        nfs_set_uid(ctx, 0)
        nfs_set_gid(ctx, 0)
        // Reconnection is ours (the hold policy): libnfs must report a dropped connection.
        nfs_set_autoreconnect(ctx, 0)
        _ = nfs_set_version(ctx, 3)
        guard let url = nfs_parse_url_dir(ctx, target.url) else {
            let reason = Self.message(ctx)
            nfs_destroy_context(ctx)
            throw NFSError.mount(path: target.export, reason: "bad server or path: \(reason)")
        }
        defer { nfs_destroy_url(url) }
        let rc = nfs_mount(ctx, url.pointee.server, url.pointee.path)
        guard rc == 0 else {
            let reason = Self.message(ctx)
            nfs_destroy_context(ctx)
            if reason.contains("MNT3ERR") || rc == -EACCES || rc == -ENOENT {
                throw NFSError.mount(path: target.export, reason: reason)
            }
            throw NFSError.unreachable(server: target.server, reason: reason)
        }
        context = ctx
    }

    /// Drops the context and every handle opened on it.
    func disconnect() {
        guard let ctx = context else { return }
        for fh in handles.values { nfs_close(ctx, fh) }
        handles.removeAll()
        nfs_destroy_context(ctx)
        context = nil
    }

    /// Whether a context is mounted.
    var isConnected: Bool { context != nil }

    /// The mounted context, for a caller that drives its asynchronous calls (`NFSPipeline`).
    var asyncContext: OpaquePointer? { context }

    /// Runs `body` on the mounted context.
    func with<T>(_ operation: String, _ body: (OpaquePointer) throws -> T) throws -> T {
        guard let ctx = context else { throw NFSError.transport(operation: operation, reason: "not connected") }
        return try body(ctx)
    }

    /// Throws the typed error of a failed call (`rc` < 0) on the context.
    func check(_ rc: Int32, _ operation: String, _ path: String) throws {
        guard rc < 0 else { return }
        let reason = context.map(Self.message) ?? "not connected"
        if Self.isTransport(rc: rc, reason: reason) { throw NFSError.transport(operation: "\(operation) \(path)", reason: reason) }
        throw NFSError.failed(operation: operation, path: path, errno: -rc, reason: reason)
    }

    /// The handle of `path` for store `id`, opened on first use.
    func handle(store id: UInt64, path: String, writable: Bool) throws -> OpaquePointer {
        if let fh = handles[id] { return fh }
        return try with("open") { ctx in
            var fh: OpaquePointer?
            try check(nfs_open(ctx, path, writable ? O_RDWR : O_RDONLY, &fh), "open", path)
            guard let fh else { throw NFSError.failed(operation: "open", path: path, errno: EIO, reason: "no handle") }
            handles[id] = fh
            return fh
        }
    }

    /// Closes the handles of `stores` this connection has.
    func close(stores: Set<UInt64>) {
        guard !handles.isEmpty, !stores.isEmpty else { return }
        for id in handles.keys where stores.contains(id) {
            if let fh = handles.removeValue(forKey: id), let ctx = context { nfs_close(ctx, fh) }
        }
    }

    /// libnfs's text for the context's last error.
    static func message(_ ctx: OpaquePointer) -> String {
        guard let p = nfs_get_error(ctx) else { return "unknown error" }
        return String(cString: p)
    }

    /// Whether a failure means the server did not answer (a timeout, a dropped or refused
    /// connection) rather than an answer that says no.
    static func isTransport(rc: Int32, reason: String) -> Bool {
        if [ETIMEDOUT, ECONNRESET, ECONNREFUSED, EPIPE, ENOTCONN, ESHUTDOWN, EHOSTUNREACH, ENETUNREACH].contains(-rc) { return true }
        let r = reason.lowercased()
        if r.contains("nfs3err") { return false }
        return r.contains("nfs_service") || r.contains("timed out") || r.contains("timeout") || r.contains("socket") || r.contains("connect")
            || r.contains("rpc error") || r.contains("rpc_") || r.contains("cancel") || r.contains("disconnect")
    }
}
