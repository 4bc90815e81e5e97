import Foundation

/// A pipe that wakes a thread sleeping in poll(2): others `poke` it, the thread polls `fd` and
/// `drain`s it when it fired. Both ends are non-blocking and closed on exec.
public final class WakePipe: @unchecked Sendable {
    /// The end to poll for POLLIN.
    public let fd: Int32
    private let writeEnd: Int32

    /// A new pipe (both ends -1 when the process has no descriptors left: no wake-ups then, and
    /// the thread still wakes at its poll timeout).
    public init() {
        var fds: [Int32] = [-1, -1]
        if pipe(&fds) == 0 {
            for fd in fds { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        } else {
            fds = [-1, -1]
        }
        fd = fds[0]
        writeEnd = fds[1]
    }

    deinit {
        if fd >= 0 { _ = Glibc.close(fd) }
        if writeEnd >= 0 { _ = Glibc.close(writeEnd) }
    }

    /// Wakes the polling thread.
    public func poke() {
        var byte: UInt8 = 1
        _ = write(writeEnd, &byte, 1)
    }

    /// Empties the pipe (after poll reported it readable).
    public func drain() {
        var sink = [UInt8](repeating: 0, count: 64)
        while read(fd, &sink, sink.count) > 0 {}
    }
}
