import VHD
#if canImport(Glibc)
import Glibc
#endif

/// pread/pwrite/fdatasync on the backing file of an extent group: whole transfers or a
/// `VHDError`.
public enum ExtentIO {
    /// Reads exactly `buffer.count` bytes at `offset`.
    public static func read(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws {
        var done = 0
        while done < buffer.count {
            let n = pread(fd, buffer.baseAddress! + done, buffer.count - done, off_t(offset) + off_t(done))
            if n < 0 {
                if errno == EINTR { continue }
                throw VHDError.io(path: "extent group", operation: "read", errno: errno)
            }
            if n == 0 { throw VHDError.shortRead(path: "extent group", offset: offset, count: buffer.count) }
            done += n
        }
    }

    /// Writes all of `buffer` at `offset`.
    public static func write(_ fd: Int32, _ buffer: UnsafeRawBufferPointer, at offset: UInt64) throws {
        var done = 0
        while done < buffer.count {
            let n = pwrite(fd, buffer.baseAddress! + done, buffer.count - done, off_t(offset) + off_t(done))
            if n < 0 {
                if errno == EINTR { continue }
                throw VHDError.io(path: "extent group", operation: "write", errno: errno)
            }
            done += n
        }
    }

    /// `count` bytes at `offset` in a new array.
    public static func read(_ fd: Int32, count: Int, at offset: UInt64) throws -> [UInt8] {
        var b = [UInt8](repeating: 0, count: count)
        try b.withUnsafeMutableBytes { try read(fd, into: $0, at: offset) }
        return b
    }

    /// Writes `bytes` at `offset`.
    public static func write(_ fd: Int32, _ bytes: [UInt8], at offset: UInt64) throws {
        try bytes.withUnsafeBytes { try write(fd, $0, at: offset) }
    }

    /// fdatasync.
    public static func sync(_ fd: Int32) throws {
        guard fdatasync(fd) == 0 else { throw VHDError.io(path: "extent group", operation: "sync", errno: errno) }
    }
}
