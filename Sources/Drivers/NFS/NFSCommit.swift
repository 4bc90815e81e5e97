import CNFS
import Foundation

/// NFSv3 COMMIT sent raw on a connection's context, for what libnfs's synchronous fsync does
/// not give back: the server's write verifier. It changes when the server restarts, so a
/// store that sees it change knows the server may have dropped UNSTABLE writes it had
/// acknowledged, and sends them again (RFC 1813 §3.3.21).
enum NFSCommit {
    /// COMMIT of the whole file `fh` on `connection`: the verifier, or a typed error (a
    /// transport error when no answer comes within the connection's timeout).
    static func verifier(_ connection: NFSConnection, _ fh: OpaquePointer, path: String) throws -> UInt64 {
        try connection.with("commit") { ctx in
            guard let rpc = nfs_get_rpc_context(ctx), let raw = nfs_get_fh(fh) else {
                throw NFSError.failed(operation: "commit", path: path, errno: EIO, reason: "no RPC context or file handle")
            }
            let handle = UnsafeRawPointer(raw).assumingMemoryBound(to: swiftsm_nfs_fh.self).pointee
            guard handle.len > 0, handle.len <= 64, let bytes = handle.val else {
                throw NFSError.failed(operation: "commit", path: path, errno: EIO, reason: "unexpected file handle layout")
            }
            var args = COMMIT3args()
            args.file.data.data_len = u_int(handle.len)
            args.file.data.data_val = bytes
            let call = Call()
            let box = Unmanaged.passRetained(call)
            defer { box.release() }
            guard rpc_nfs3_commit_async(rpc, answered, &args, box.toOpaque()) == 0 else {
                throw NFSError.transport(operation: "commit \(path)", reason: NFSConnection.message(ctx))
            }
            let deadline = Date().addingTimeInterval(Double(connection.target.timeoutSeconds))
            while !call.done {
                guard Date() < deadline else {
                    throw NFSError.transport(operation: "commit \(path)", reason: "timed out")
                }
                var p = pollfd(fd: nfs_get_fd(ctx), events: Int16(truncatingIfNeeded: nfs_which_events(ctx)), revents: 0)
                let n = poll(&p, 1, 100)
                if n < 0 && errno != EINTR {
                    throw NFSError.transport(operation: "commit \(path)", reason: "poll: \(String(cString: strerror(errno)))")
                }
                if nfs_service(ctx, n > 0 ? Int32(p.revents) : 0) < 0 {
                    throw NFSError.transport(operation: "commit \(path)", reason: NFSConnection.message(ctx))
                }
            }
            switch call.outcome {
            case let .verifier(v): return v
            case let .refused(status):
                throw NFSError.failed(operation: "commit", path: path, errno: Self.errnoOf(status), reason: "NFS3ERR \(status)")
            case let .failed(reason), let .none(reason):
                throw NFSError.transport(operation: "commit \(path)", reason: reason)
            }
        }
    }

    /// The errno of an NFSv3 status (the common ones; EIO otherwise).
    static func errnoOf(_ status: Int32) -> Int32 {
        switch status {
        case 1: return EPERM
        case 2: return ENOENT
        case 5: return EIO
        case 13: return EACCES
        case 28: return ENOSPC
        case 30: return EROFS
        case 70: return ESTALE
        default: return EIO
        }
    }

    /// What the callback leaves.
    final class Call {
        enum Outcome {
            case verifier(UInt64)
            case refused(Int32)
            case failed(String)
            case none(String)
        }
        var done = false
        var outcome = Outcome.none("no answer")
    }

    /// The COMMIT reply: the verifier's 8 bytes copied out before libnfs frees it.
    private static let answered: rpc_cb = { _, status, data, privateData in
        let call = Unmanaged<Call>.fromOpaque(privateData!).takeUnretainedValue()
        call.done = true
        guard status == RPC_STATUS_SUCCESS, let data else {
            let reason = status == RPC_STATUS_ERROR && data != nil
                ? String(cString: data!.assumingMemoryBound(to: CChar.self)) : "RPC status \(status)"
            call.outcome = .failed(reason)
            return
        }
        let res = data.assumingMemoryBound(to: COMMIT3res.self).pointee
        guard res.status == NFS3_OK else { call.outcome = .refused(Int32(res.status.rawValue)); return }
        var verf = res.COMMIT3res_u.resok.verf
        let v = withUnsafeBytes(of: &verf) { $0.loadUnaligned(as: UInt64.self) }
        call.outcome = .verifier(v)
    }
}
