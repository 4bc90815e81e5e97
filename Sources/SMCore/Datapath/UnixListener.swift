import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A listening unix stream socket made with the system calls, for paths up to the kernel's 107
/// bytes (NIO's own `bind(unixDomainSocketPath:)` stops at 103); handed to NIO with
/// `ServerBootstrap.withBoundSocket`.
enum UnixListener {
    /// Removes a stale socket file at `path`, binds a new socket there and listens.
    static func listen(_ path: String, backlog: Int32 = 64) throws -> Int32 {
        let bytes = Array(path.utf8)
        guard bytes.count <= DatapathDirectory.maxSocketPath else { throw DatapathError.socketPathTooLong(path) }
        var st = stat()
        if lstat(path, &st) == 0 {
            guard (st.st_mode & S_IFMT) == S_IFSOCK else { throw DatapathError.bind("\(path) exists and is not a socket") }
            unlink(path)
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw DatapathError.bind("socket: \(String(cString: strerror(errno)))") }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { p in
            p.copyBytes(from: bytes)
            p[bytes.count] = 0
        }
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0, Glibc.listen(fd, backlog) == 0 else {
            let e = errno
            close(fd)
            throw DatapathError.bind("\(path): \(String(cString: strerror(e)))")
        }
        return fd
    }
}
