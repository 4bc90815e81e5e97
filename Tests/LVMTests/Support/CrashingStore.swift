import VHD
@testable import LVM

/// The crash a `CrashingStore` simulates.
struct SimulatedCrash: Error {}

/// A store over memory bytes that lets `limit` writes through, then fails every write after
/// (the bytes a crash would leave are those of the writes that completed).
final class CrashingStore: BlockStore {
    /// The surviving bytes.
    let inner: MemoryStore
    /// Writes allowed before the crash; nil for none.
    let limit: Int?
    /// Writes attempted so far.
    private(set) var writes = 0

    init(bytes: [UInt8], limit: Int?) {
        inner = MemoryStore(bytes: bytes, isBlockDevice: true)
        self.limit = limit
    }

    var size: UInt64 { inner.size }
    var isBlockDevice: Bool { true }

    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws {
        try inner.read(into: buffer, at: offset)
    }

    func write(_ buffer: UnsafeRawBufferPointer, at offset: UInt64) throws {
        writes += 1
        if let limit, writes > limit { throw SimulatedCrash() }
        try inner.write(buffer, at: offset)
    }

    func resize(to size: UInt64) throws { try inner.resize(to: size) }
    func sync() throws {}
}
