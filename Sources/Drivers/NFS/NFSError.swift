import Foundation
import SMCore

/// What went wrong talking to an NFS server, typed so that the driver can answer with the
/// Python SM's fault codes.
public enum NFSError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Nothing answers on the server's NFS port (or it could not be resolved).
    case unreachable(server: String, reason: String)
    /// The server answered but refused to mount the path (no such export, access denied).
    case mount(path: String, reason: String)
    /// The server stopped answering in the middle of an operation (timeouts, a dropped
    /// connection) and the hold policy gave up.
    case transport(operation: String, reason: String)
    /// An NFS operation failed with `errno` (ENOENT, EROFS, ENOSPC, EEXIST, ...).
    case failed(operation: String, path: String, errno: Int32, reason: String)
    /// A version this client cannot use.
    case version(String)

    /// A one-line explanation (never a secret: NFS carries none).
    public var description: String {
        switch self {
        case let .unreachable(s, r): return "NFS server \(s) is unreachable: \(r)"
        case let .mount(p, r): return "mounting \(p) failed: \(r)"
        case let .transport(op, r): return "\(op): the NFS server stopped answering: \(r)"
        case let .failed(op, p, e, r): return "\(op) \(p) failed (errno \(e)): \(r)"
        case let .version(v): return v
        }
    }

    /// The errno of a failed operation (nil for the others).
    public var errno: Int32? {
        if case let .failed(_, _, e, _) = self { return e }
        return nil
    }
}

extension NFSError: SMAPIFaultConvertible {
    /// A server that does not answer is 108 `NFSTarget`; a refused mount 73 `NFSMount`; a
    /// read-only export 461; a full one 44; other refusals the command's own code.
    public func fault(for command: SMAPICommand) -> SMAPIError {
        switch self {
        case .unreachable, .transport: return SMAPIError(.NFSTarget, opterr: description)
        case .mount: return SMAPIError(.NFSMount, opterr: description)
        case .version: return SMAPIError(.NFSVersion, opterr: description)
        case let .failed(_, _, e, _):
            if e == EROFS || e == EACCES || e == EPERM { return SMAPIError(.SharedFileSystemNoWrite, opterr: description) }
            if e == ENOSPC || e == EDQUOT { return SMAPIError(.SRNoSpace, opterr: description) }
            return SMAPIError(command.failureCode, opterr: description)
        }
    }
}
