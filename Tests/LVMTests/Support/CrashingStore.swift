import VHD
@testable import LVM

/// The crash a `CrashingStore` simulates.
struct SimulatedCrash: Error {}

/// A store over memory bytes that lets `limit` writes through, then fails every write after
/// (`dropping`: silently loses them, as a cache that never reached the disk). The bytes a crash
/// would leave are those of the writes that completed.
final class CrashingStore: BlockStore {
    /// Whether writes past the limit vanish without an error instead of throwing.
    let dropping: Bool
    /// The surviving bytes.
    let inner: MemoryStore
    /// Writes allowed before the crash; nil for none.
    let limit: Int?
    /// Writes attempted so far.
    private(set) var writes = 0

    init(bytes: [UInt8], limit: Int?, dropping: Bool = false) {
        self.dropping = dropping
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
        if let limit, writes > limit {
            if dropping { return }
            throw SimulatedCrash()
        }
        try inner.write(buffer, at: offset)
    }

    func resize(to size: UInt64) throws { try inner.resize(to: size) }
    func sync() throws {}
}
