import NIOCore
import VHD

/// A WRITE whose data goes out from an I/O thread (or, to a store with a pipeline up, with no
/// thread waiting): planned on the chain thread (the blocks it
/// needs allocated, nothing visible yet), its runs written to a `ConcurrentWriteStore` beside
/// other writes in flight, then made visible on the chain thread (`VHDImage.finishPlannedWrite`)
/// before it is answered. So an answered write is in the leaf as it is with a queued write,
/// and a write that never finished is invisible: the leaf reads what it held before.
struct PlannedWrite: @unchecked Sendable {
    /// The leaf image it was planned in (touched on the chain thread only).
    let image: VHDImage
    /// The leaf's store, written from an I/O thread.
    let store: any ConcurrentWriteStore
    /// Where each run of the payload goes.
    let pieces: [VHDImage.PlannedSectors]
    /// The data.
    let payload: ByteBuffer
    /// The request's place on the disk.
    let offset: UInt64

    /// The plan of writing `payload` at `offset` into the chain's leaf, or nil when it must go
    /// the usual way (unaligned, or a leaf store that takes one writer at a time).
    static func make(_ chain: VHDChain, _ payload: ByteBuffer, offset: UInt64) throws -> PlannedWrite? {
        let length = payload.readableBytes
        guard length > 0, offset % 512 == 0, length % 512 == 0,
              let store = chain.leaf.store as? any ConcurrentWriteStore, !(store is any DescriptorStore) else { return nil }
        let pieces = try chain.leaf.planWrite(sector: offset / 512, count: length / 512)
        return PlannedWrite(image: chain.leaf, store: store, pieces: pieces, payload: payload, offset: offset)
    }

    /// Writes every run of the payload to the store (on an I/O thread).
    func writeData() throws {
        try payload.withUnsafeReadableBytes { bytes in
            for p in pieces {
                try store.write(UnsafeRawBufferPointer(rebasing: bytes[p.bufferOffset..<p.bufferOffset + p.count * 512]),
                                at: p.storeOffset)
            }
        }
    }

    /// Starts every run of the payload on the store's pipeline with no thread waiting, when the
    /// store has one up (an `AsyncBlockStore`): `completion` once every run ended, with the first
    /// error. False when it has none: the caller writes the data from an I/O thread (`writeData`).
    func startData(completion: @escaping @Sendable (Error?) -> Void) -> Bool {
        guard let async = store as? any AsyncBlockStore, async.startsAsynchronously, !pieces.isEmpty else { return false }
        // The payload stays alive (and unchanged) in the countdown's closure until the last run ended.
        let payload = self.payload
        let bytes = payload.withUnsafeReadableBytes { TransferredBuffer($0) }
        let runs = pieces.map { p in
            (bytes: UnsafeRawBufferPointer(rebasing: bytes.bytes[p.bufferOffset..<p.bufferOffset + p.count * 512]), offset: p.storeOffset)
        }
        async.startWrites(runs) { error in
            withExtendedLifetime(payload) {}
            completion(error)
        }
        return true
    }
}
