/// A `BlockStore` in memory: for tests, and for building small images before writing them out.
public final class MemoryStore: BlockStore {
    /// The bytes.
    public private(set) var bytes: [UInt8]
    /// Whether the store behaves as a fixed-size block device.
    public let isBlockDevice: Bool
    /// Seconds since the Unix epoch of the last write (a stand-in for a file's mtime).
    public private(set) var modified: Int = 0

    /// A store holding `bytes`.
    public init(bytes: [UInt8] = [], isBlockDevice: Bool = false) {
        self.bytes = bytes
        self.isBlockDevice = isBlockDevice
    }

    /// Current size in bytes.
    public var size: UInt64 { UInt64(bytes.count) }

    /// Copies bytes out; throws past the end.
    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws {
        guard offset <= size, UInt64(buffer.count) <= size - offset else {
            throw VHDError.shortRead(path: "memory", offset: offset, count: buffer.count)
        }
        bytes.withUnsafeBytes { src in
            buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: src[Int(offset)..<Int(offset) + buffer.count]))
        }
    }

    /// Copies bytes in, growing the store.
    public func write(_ buffer: UnsafeRawBufferPointer, at offset: UInt64) throws {
        guard offset <= 1 << 40 else { throw VHDError.noSpace(path: "memory", needed: offset, available: size) }
        let end = Int(offset) + buffer.count
        if end > bytes.count {
            if isBlockDevice { throw VHDError.noSpace(path: "memory", needed: UInt64(end), available: size) }
            bytes.append(contentsOf: repeatElement(0, count: end - bytes.count))
        }
        bytes.withUnsafeMutableBytes { dst in
            UnsafeMutableRawBufferPointer(rebasing: dst[Int(offset)..<end]).copyMemory(from: buffer)
        }
        modified += 1
    }

    /// Truncates or zero-extends.
    public func resize(to size: UInt64) throws {
        if isBlockDevice {
            guard size <= self.size else { throw VHDError.noSpace(path: "memory", needed: size, available: self.size) }
            return
        }
        if Int(size) < bytes.count { bytes.removeSubrange(Int(size)...) } else {
            bytes.append(contentsOf: repeatElement(0, count: Int(size) - bytes.count))
        }
    }

    /// Nothing to do in memory.
    public func sync() throws {}
}
