/// Where a VHD stream's bytes come from, front to back (an HTTP request body, a pipe).
public protocol VHDStreamSource: AnyObject {
    /// Reads up to `buffer.count` bytes into `buffer`: how many, 0 only at the end of the stream.
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int
}

/// Reads a dynamic or differencing VHD front to back, as it is uploaded: every piece of metadata
/// (footer copy, header, BAT) is checked before the first block is handed out, the blocks come in
/// the order they lie in the stream, and the stream must end with a footer matching its copy.
/// Anything that would need to seek backwards (a BAT after the data, overlapping blocks) is
/// refused: such a file is valid on disk but cannot be streamed.
public final class VHDStreamReader {
    /// The footer copy at offset 0.
    public let footer: Footer
    /// The dynamic header.
    public let header: DynamicHeader
    /// Whether the stream is a differencing disk (unset bitmap bits: the parent's data).
    public var isDifferencing: Bool { footer.diskType == .differencing }
    /// The virtual size in bytes.
    public var virtualSize: UInt64 { footer.currentSize }
    /// Bytes per block.
    public var blockSize: Int { Int(header.blockSize) }
    /// The blocks the stream holds, in stream order.
    public let blocks: [Int]

    private let source: VHDStreamSource
    private var position: UInt64 = 0
    private var next = 0
    private let entries: [UInt32]
    private static let name = "VHD stream"
    /// The largest block size accepted (blktap and qemu write 2 MiB).
    public static let maxBlockSize: UInt32 = 64 << 20
    /// The largest BAT read (16 Mi entries: 32 TiB of 2 MiB blocks), so that a hostile header
    /// with tiny blocks cannot make the reader allocate gigabytes.
    public static let maxBATBytes: UInt64 = 64 << 20

    /// Reads and checks the stream's metadata from `source`.
    public init(source: VHDStreamSource) throws {
        self.source = source
        var first = [UInt8](repeating: 0, count: Footer.size)
        try Self.fill(source, &first, &position)
        let f: Footer
        switch Footer.decode(first) {
        case .success(let decoded): f = decoded
        case .failure(.cookie): throw VHDError.invalidFooter(path: Self.name, reason: "no footer copy at offset 0: not a dynamic or differencing VHD (a fixed VHD imports as raw)")
        case .failure(let problem): throw VHDError.invalidFooter(path: Self.name, reason: problem.description)
        }
        guard !f.disabled else { throw VHDError.invalidFooter(path: Self.name, reason: "disabled by an unfinished resize (v_poison)") }
        guard f.diskType == .dynamic || f.diskType == .differencing else {
            throw VHDError.unsupported(path: Self.name, reason: "a fixed VHD has no footer copy to stream from: import it as raw")
        }
        guard f.currentSize > 0, f.currentSize % 512 == 0, f.currentSize <= Footer.maxReadableSize else {
            throw VHDError.invalidFooter(path: Self.name, reason: "virtual size \(f.currentSize)")
        }
        guard f.dataOffset >= UInt64(Footer.size), f.dataOffset < 1 << 30 else {
            throw VHDError.invalidFooter(path: Self.name, reason: "header offset \(f.dataOffset) is not after the footer copy")
        }
        footer = f
        try Self.skip(source, to: f.dataOffset, &position)
        var hb = [UInt8](repeating: 0, count: DynamicHeader.size)
        try Self.fill(source, &hb, &position)
        let h: DynamicHeader
        switch DynamicHeader.decode(hb) {
        case .success(let decoded): h = decoded
        case .failure(let problem): throw VHDError.invalidHeader(path: Self.name, reason: problem.description)
        }
        guard h.blockSize >= 4096, h.blockSize <= Self.maxBlockSize, h.blockSize & (h.blockSize - 1) == 0 else {
            throw VHDError.invalidHeader(path: Self.name, reason: "block size \(h.blockSize)")
        }
        let needed = (f.currentSize + UInt64(h.blockSize) - 1) / UInt64(h.blockSize)
        guard UInt64(h.maxTableEntries) >= needed, UInt64(h.maxTableEntries) <= needed + (1 << 20), h.batBytes <= Self.maxBATBytes else {
            throw VHDError.invalidHeader(path: Self.name, reason: "\(h.maxTableEntries) BAT entries for \(needed) blocks")
        }
        guard h.tableOffset % 512 == 0, h.tableOffset >= position else {
            throw VHDError.invalidBAT(path: Self.name, reason: "the BAT at \(h.tableOffset) lies before the header's end (\(position)): the file cannot be streamed")
        }
        header = h
        try Self.skip(source, to: h.tableOffset, &position)
        var bat = [UInt8](repeating: 0, count: Int(h.batBytes))
        try Self.fill(source, &bat, &position)
        let tableEnd = position
        var entries = [UInt32](repeating: 0, count: Int(needed))
        var present: [(entry: UInt32, block: Int)] = []
        for b in 0..<Int(h.maxTableEntries) {
            let e = bat.be32(b * 4)
            guard e != UInt32.max else { continue }
            guard b < Int(needed) else { throw VHDError.invalidBAT(path: Self.name, reason: "block \(b) lies beyond the virtual size") }
            guard UInt64(e) * 512 >= tableEnd else {
                throw VHDError.invalidBAT(path: Self.name, reason: "block \(b) at sector \(e) lies before the BAT's end: the file cannot be streamed")
            }
            entries[b] = e
            present.append((e, b))
        }
        present.sort { $0.entry < $1.entry }
        let span = UInt64(h.bitmapSectors) * 512 + UInt64(h.blockSize)
        for (a, b) in zip(present, present.dropFirst()) where UInt64(a.entry) * 512 + span > UInt64(b.entry) * 512 {
            throw VHDError.invalidBAT(path: Self.name, reason: "blocks \(a.block) and \(b.block) overlap")
        }
        self.entries = entries
        blocks = present.map(\.block)
    }

    /// The next block in stream order: its index and sector bitmap, its data in `data` (at least
    /// `blockSize` bytes); nil after the last block, once the closing footer was read and checked.
    public func nextBlock(into data: UnsafeMutableRawBufferPointer) throws -> (index: Int, bitmap: [UInt8])? {
        guard next < blocks.count else {
            if next == blocks.count {
                next += 1
                try finish()
            }
            return nil
        }
        let b = blocks[next]
        next += 1
        try Self.skip(source, to: UInt64(entries[b]) * 512, &position)
        var bitmap = [UInt8](repeating: 0, count: header.bitmapSectors * 512)
        try Self.fill(source, &bitmap, &position)
        try Self.fill(source, UnsafeMutableRawBufferPointer(rebasing: data[0..<blockSize]), &position)
        return (b, bitmap)
    }

    /// Reads to the end of the stream: its last 512 bytes must be the footer, as its copy says.
    private func finish() throws {
        var tail: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = try chunk.withUnsafeMutableBytes { try source.read(into: $0) }
            if n == 0 { break }
            position += UInt64(n)
            tail += chunk[0..<n]
            if tail.count > 4096 { tail.removeFirst(tail.count - Footer.size) }
        }
        guard tail.count >= Footer.size, case .success(let end) = Footer.decode(Array(tail.suffix(Footer.size))),
              end.uuid == footer.uuid, end.currentSize == footer.currentSize else {
            throw VHDError.invalidFooter(path: Self.name, reason: "the stream does not end with its footer (cut short at byte \(position)?)")
        }
    }

    private static func fill(_ source: VHDStreamSource, _ bytes: inout [UInt8], _ position: inout UInt64) throws {
        try bytes.withUnsafeMutableBytes { try fill(source, $0, &position) }
    }

    private static func fill(_ source: VHDStreamSource, _ buffer: UnsafeMutableRawBufferPointer, _ position: inout UInt64) throws {
        var got = 0
        while got < buffer.count {
            let n = try source.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[got...]))
            guard n > 0 else {
                throw VHDError.shortRead(path: name, offset: position, count: buffer.count - got)
            }
            got += n
            position += UInt64(n)
        }
    }

    private static func skip(_ source: VHDStreamSource, to offset: UInt64, _ position: inout UInt64) throws {
        guard offset >= position else {
            throw VHDError.unsupported(path: name, reason: "data at \(offset) lies behind the stream's position \(position)")
        }
        var left = offset - position
        var scratch = [UInt8](repeating: 0, count: Int(min(left, 1 << 16)))
        while left > 0 {
            let n = Int(min(left, UInt64(scratch.count)))
            try scratch.withUnsafeMutableBytes { try fill(source, UnsafeMutableRawBufferPointer(rebasing: $0[0..<n]), &position) }
            left -= UInt64(n)
        }
    }
}
