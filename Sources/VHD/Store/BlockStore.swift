/// Random-access bytes that hold one image: a file, an LV slice of a LUN, an NFS file.
///
/// Everything the engine does is expressed as reads and writes at byte offsets. Implementations
/// must read or write the whole buffer or throw; reading past `size` is an error.
public protocol BlockStore: AnyObject {
    /// Current size in bytes.
    var size: UInt64 { get }
    /// Whether this store is a block device whose size is fixed (the footer lives at its end).
    var isBlockDevice: Bool { get }
    /// Fills `buffer` with the bytes at `offset`; throws `VHDError.shortRead` past the end.
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws
    /// Writes all of `buffer` at `offset`, growing the store if needed.
    func write(_ buffer: UnsafeRawBufferPointer, at offset: UInt64) throws
    /// Grows or shrinks the store to `size` bytes (new bytes read as zeros).
    func resize(to size: UInt64) throws
    /// Makes every completed write durable.
    func sync() throws
    /// Gives back the storage of `count` bytes at `offset` without changing the size: afterwards
    /// they read as zeros and hold no space. Returns false when the store cannot do that (a
    /// block device, a filesystem without hole punching), and then nothing changed. The default
    /// keeps the data and returns false. Callers pass whole filesystem blocks (4 KiB-aligned);
    /// a store may zero, rather than free, a partial one.
    func discard(offset: UInt64, count: UInt64) throws -> Bool
    /// Bytes of `range` that hold no storage yet (holes of a sparse file), which writing them
    /// would take from the SR. The default is 0: the store is fully allocated (a block device,
    /// an LV) or cannot tell.
    func unallocatedBytes(in range: Range<UInt64>) -> UInt64
}

extension BlockStore {
    /// Stores are ordinary files unless they say otherwise.
    public var isBlockDevice: Bool { false }

    /// Stores cannot punch holes unless they say otherwise: the data stays.
    public func discard(offset: UInt64, count: UInt64) throws -> Bool { false }

    /// Stores hold every byte they have unless they say otherwise.
    public func unallocatedBytes(in range: Range<UInt64>) -> UInt64 { 0 }

    /// Reads `count` bytes at `offset` into a new array.
    public func read(count: Int, at offset: UInt64) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        try bytes.withUnsafeMutableBytes { try read(into: $0, at: offset) }
        return bytes
    }

    /// Writes `bytes` at `offset`.
    public func write(_ bytes: [UInt8], at offset: UInt64) throws {
        try bytes.withUnsafeBytes { try write($0, at: offset) }
    }

    /// Reads `count` bytes at `offset`, returning zeros for the part past the end of the store.
    public func readZeroFilled(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws {
        let available = offset >= size ? 0 : Int(min(UInt64(buffer.count), size - offset))
        if available > 0 {
            try read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<available]), at: offset)
        }
        if available < buffer.count {
            UnsafeMutableRawBufferPointer(rebasing: buffer[available...]).initializeMemory(as: UInt8.self, repeating: 0)
        }
    }
}
