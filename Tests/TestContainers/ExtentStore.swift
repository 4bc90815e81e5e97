import VHD

/// A volume of an extent group as the VHD engine sees it: a fixed-size block device (the VHD
/// footer in its last sector, no growing past the end: `VHDError.noSpace`), fully allocated
/// (no holes, no discard), reached through pread/pwrite on the group's backing file.
public final class ExtentStore: BlockStore {
    /// The engine path it was opened under.
    public let path: String
    /// Whether writes are allowed.
    public let writable: Bool
    let group: ExtentGroup
    let mapping: ExtentMapping

    init(path: String, group: ExtentGroup, mapping: ExtentMapping, writable: Bool) {
        self.path = path
        self.group = group
        self.mapping = mapping
        self.writable = writable
    }

    /// The volume's size (whole extents).
    public var size: UInt64 { mapping.size }

    /// An LV: a block device of fixed size.
    public var isBlockDevice: Bool { true }

    /// The runs, checked to hold `count` bytes at `offset`.
    private func runs(_ offset: UInt64, _ count: Int, writing: Bool) throws -> [ExtentTable.Run] {
        guard let runs = mapping.current else { throw VHDError.io(path: path, operation: writing ? "write" : "read", errno: 19) }
        let size = runs.reduce(0) { $0 + $1.count } * mapping.extentSize
        guard offset <= size, UInt64(count) <= size - offset else {
            if writing { throw VHDError.noSpace(path: path, needed: offset &+ UInt64(count), available: size) }
            throw VHDError.shortRead(path: path, offset: offset, count: count)
        }
        return runs
    }

    /// Reads from the extents holding the range.
    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws {
        var done = 0
        for s in ExtentMapping.segments(try runs(offset, buffer.count, writing: false), extentSize: mapping.extentSize,
                                        offset: offset, count: buffer.count) {
            try ExtentIO.read(group.fd, into: UnsafeMutableRawBufferPointer(rebasing: buffer[done..<done + s.length]), at: s.physical)
            done += s.length
        }
    }

    /// Writes into the extents holding the range; past the end is `noSpace`.
    public func write(_ buffer: UnsafeRawBufferPointer, at offset: UInt64) throws {
        guard writable else { throw VHDError.readOnly(path: path) }
        var done = 0
        for s in ExtentMapping.segments(try runs(offset, buffer.count, writing: true), extentSize: mapping.extentSize,
                                        offset: offset, count: buffer.count) {
            try ExtentIO.write(group.fd, UnsafeRawBufferPointer(rebasing: buffer[done..<done + s.length]), at: s.physical)
            done += s.length
        }
    }

    /// A block device does not change size through its store (the container resizes volumes):
    /// shrinking is a no-op, growing `noSpace`, as `FileStore` does for devices.
    public func resize(to size: UInt64) throws {
        guard writable else { throw VHDError.readOnly(path: path) }
        guard size <= self.size else { throw VHDError.noSpace(path: path, needed: size, available: self.size) }
    }

    /// fdatasync of the backing file.
    public func sync() throws { try ExtentIO.sync(group.fd) }
}
