import VHD

/// A store that counts its writes and resizes as steps.
final class CountingStore: BlockStore {
    let inner: any BlockStore
    let counter: StepCounter

    init(_ inner: any BlockStore, _ counter: StepCounter) {
        self.inner = inner
        self.counter = counter
    }

    var size: UInt64 { inner.size }
    var isBlockDevice: Bool { inner.isBlockDevice }
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws { try inner.read(into: buffer, at: offset) }
    func write(_ buffer: UnsafeRawBufferPointer, at offset: UInt64) throws {
        try inner.write(buffer, at: offset)
        counter.step()
    }
    func resize(to size: UInt64) throws {
        try inner.resize(to: size)
        counter.step()
    }
    func sync() throws { try inner.sync() }
    func discard(offset: UInt64, count: UInt64) throws -> Bool { try inner.discard(offset: offset, count: count) }
    func unallocatedBytes(in range: Range<UInt64>) -> UInt64 { inner.unallocatedBytes(in: range) }
}
