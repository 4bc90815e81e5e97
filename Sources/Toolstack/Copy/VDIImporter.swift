import Foundation
import VHD

/// Writes an uploaded disk into a VDI through its data path's NBD export, as `/import_raw_vdi`
/// receives it: raw bytes from offset 0, or a dynamic VHD (its blocks; zeros wherever it holds
/// none), or a differencing VHD (only the sectors it holds, over what the VDI holds). Zeros are
/// written only where the VDI may hold data, so a new VDI stays sparse.
public final class VDIImporter: @unchecked Sendable {
    /// The destination's export.
    public let destination: NBDExport
    /// Bytes per chunk: a VHD block.
    public let chunkSize = Int64(DynamicHeader.defaultBlockSize)

    /// An importer into `destination`.
    public init(destination: NBDExport) {
        self.destination = destination
    }

    /// What an import did.
    public struct Outcome: Sendable, Equatable {
        /// Bytes of the body consumed.
        public var received: UInt64
        /// Bytes written to the VDI (data and zeros).
        public var written: UInt64
    }

    /// Why an upload was refused.
    public enum Refusal: Error, CustomStringConvertible {
        /// The disk in the upload is larger than the VDI.
        case tooLarge(disk: UInt64, vdi: Int64)
        /// The upload is not a disk this importer reads.
        case invalid(String)

        /// What is wrong, for the task's error.
        public var description: String {
            switch self {
            case let .tooLarge(disk, vdi): return "the uploaded disk has at least \(disk) bytes, the VDI only \(vdi)"
            case .invalid(let text): return text
            }
        }
    }

    /// Writes the raw bytes of `body` from offset 0; `progress` gets the bytes received so far.
    public func importRaw(_ body: VHDStreamSource, progress: (UInt64) -> Void, cancelled: () -> Bool) throws -> Outcome {
        let dst = try VDICopier.connect(destination)
        let holding = try dst.dataChunks(size: dst.size, chunkSize: chunkSize)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: Int(chunkSize), alignment: 4096)
        defer { buffer.deallocate() }
        var outcome = Outcome(received: 0, written: 0)
        var i: Int64 = 0
        while true {
            if cancelled() { throw VDICopyError.cancelled }
            let n = try Self.fill(body, buffer)
            if n == 0 { break }
            let offset = i * chunkSize
            guard offset + Int64(n) <= dst.size else { throw Refusal.tooLarge(disk: UInt64(offset) + UInt64(n), vdi: dst.size) }
            let data = UnsafeRawBufferPointer(rebasing: buffer[0..<n])
            if !Convert.isZero(data) {
                try dst.write(data, at: offset)
                outcome.written += UInt64(n)
            } else if holding.contains(i) {
                try dst.writeZeros(length: Int64(n), at: offset)
                outcome.written += UInt64(n)
            }
            outcome.received += UInt64(n)
            progress(outcome.received)
            i += 1
            if n < buffer.count { break }
        }
        if outcome.written > 0 { try dst.flush() }
        return outcome
    }

    /// Writes the VHD in `body`: a dynamic disk replaces the VDI's first `virtualSize` bytes, a
    /// differencing one lays its sectors over them. Its metadata is checked before anything is
    /// written; a VHD larger than the VDI is taken when nothing beyond the VDI's end holds data.
    public func importVHD(_ body: VHDStreamSource, progress: (UInt64) -> Void, cancelled: () -> Bool) throws -> Outcome {
        let counting = CountingSource(body)
        let reader: VHDStreamReader
        do { reader = try VHDStreamReader(source: counting) } catch { throw Refusal.invalid("\(error)") }
        let dst = try VDICopier.connect(destination)
        let bs = Int64(reader.blockSize)
        // A VHD may be a little larger than the disk it holds (qemu rounds sizes up to a CHS
        // geometry): what lies beyond the VDI's end must then hold no data.
        let size = min(Int64(reader.virtualSize), dst.size)
        if let beyond = reader.blocks.first(where: { Int64($0) * bs >= dst.size }) {
            throw Refusal.tooLarge(disk: UInt64(beyond + 1) * UInt64(bs), vdi: dst.size)
        }
        var outcome = Outcome(received: 0, written: 0)
        // A dynamic disk reads as zeros wherever it has no block: those ranges are cleared
        // where the VDI holds data.
        let holding = try dst.dataChunks(size: size, chunkSize: bs)
        if !reader.isDifferencing {
            let present = Set(reader.blocks.map { Int64($0) })
            for i in holding.sorted() where !present.contains(i) {
                let n = min(bs, size - i * bs)
                try dst.writeZeros(length: n, at: i * bs)
                outcome.written += UInt64(n)
            }
        }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: reader.blockSize, alignment: 4096)
        defer { buffer.deallocate() }
        while true {
            if cancelled() { throw VDICopyError.cancelled }
            let next: (index: Int, bitmap: [UInt8])?
            do { next = try reader.nextBlock(into: buffer) } catch { throw Refusal.invalid("\(error)") }
            guard let (b, bitmap) = next else { break }
            let base = Int64(b) * bs
            let sectors = Int(min(bs, size - base) / 512)
            if base + bs > size && Int64(reader.virtualSize) > size {
                let tail = UnsafeRawBufferPointer(rebasing: buffer[Int(size - base)..<Int(min(bs, Int64(reader.virtualSize) - base))])
                guard Convert.isZero(tail) else { throw Refusal.tooLarge(disk: reader.virtualSize, vdi: dst.size) }
            }
            try SectorBitmap.forEachRun(bitmap, in: 0..<sectors) { start, count, present in
                let at = base + Int64(start) * 512, length = count * 512
                if present {
                    try dst.write(UnsafeRawBufferPointer(rebasing: buffer[start * 512..<start * 512 + length]), at: at)
                } else if !reader.isDifferencing && holding.contains(Int64(b)) {
                    try dst.writeZeros(length: Int64(length), at: at)
                } else {
                    return
                }
                outcome.written += UInt64(length)
            }
            progress(counting.count)
        }
        outcome.received = counting.count
        if outcome.written > 0 { try dst.flush() }
        return outcome
    }

    /// Reads from `body` until `buffer` is full or the body ends: the bytes read.
    private static func fill(_ body: VHDStreamSource, _ buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        var got = 0
        while got < buffer.count {
            let n = try body.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[got...]))
            if n == 0 { break }
            got += n
        }
        return got
    }
}

/// A source that counts the bytes read through it.
private final class CountingSource: VHDStreamSource {
    private let inner: VHDStreamSource
    /// Bytes read so far.
    private(set) var count: UInt64 = 0

    init(_ inner: VHDStreamSource) { self.inner = inner }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        let n = try inner.read(into: buffer)
        count += UInt64(n)
        return n
    }
}
