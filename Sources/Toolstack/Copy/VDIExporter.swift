import Foundation
import LibNBD
import VHD

/// Streams one VDI out of its data path's NBD export, as `/export_raw_vdi` sends it: the whole
/// disk raw (unallocated ranges as zeros, never read), or a VHD holding only the allocated blocks,
/// or, against a base, a differencing VHD holding only the blocks that differ from it. The next
/// block is read while the current one is sent.
public final class VDIExporter: @unchecked Sendable {
    /// What the stream holds.
    public enum Format: Sendable, Equatable {
        /// Every byte of the disk.
        case raw
        /// A dynamic VHD, or a differencing one over the base.
        case vhd
    }

    /// A planned export: its length in bytes and the chunks it reads.
    public struct Plan: Sendable {
        /// The stream's length.
        public var length: UInt64
        /// The VHD layout (nil for raw).
        public var layout: VHDStreamLayout?
        /// The chunks read from the source (raw: the allocated ones, the rest are zeros).
        public var chunks: Set<Int64>
    }

    /// The source's export.
    public let source: NBDExport
    /// The base's export, for a differencing VHD.
    public let base: NBDExport?
    /// The virtual size exported.
    public let size: Int64
    /// Bytes per chunk: a VHD block.
    public let chunkSize = Int64(DynamicHeader.defaultBlockSize)

    /// The layers of the source's and the base's open chains, leaf first (nil: not known).
    public let layers: (@Sendable () throws -> (source: [String], base: [String]))?
    /// How the differences were found: "layers <n> <m>" (candidates from the chains, `LayeredDelta`)
    /// or "contents" (every chunk either holds); nil without a base.
    public private(set) var deltaBasis: String?

    /// An exporter of the first `size` bytes of `source`, against `base` for a differencing VHD
    /// (with `layers`, the two chains' layers, for candidates in proportion to the delta).
    public init(source: NBDExport, base: NBDExport? = nil, size: Int64,
                layers: (@Sendable () throws -> (source: [String], base: [String]))? = nil) {
        self.source = source
        self.base = base
        self.layers = layers
        self.size = size
    }

    /// Plans the stream: which chunks hold data (against a base: which differ from it, found by
    /// reading both where they may differ), and for a VHD its layout, with footer uuid `uuid`;
    /// `parent` names the base in a differencing VHD's header.
    public func plan(_ format: Format, uuid: VHDUUID = .random(), parent: VHDStreamLayout.Parent? = nil) throws(VDICopyError) -> Plan {
        let planFromLayers = base != nil && layers != nil
        let src = try VDICopier.connect(source, allocationDepth: planFromLayers)
        guard src.size >= size else { throw .mismatch("the source export has \(src.size) bytes, \(size) expected") }
        let chunks: Set<Int64>
        if let base {
            let b = try VDICopier.connect(base, allocationDepth: planFromLayers)
            guard b.size >= size else { throw .mismatch("the base has \(b.size) bytes, the source \(size)") }
            let layered = try layers.flatMap { l throws(VDICopyError) in
                try LayeredDelta(layers: l).chunks(source: src, base: b, size: size, chunkSize: chunkSize)
            }
            deltaBasis = layered?.basis ?? "contents"
            do throws(NBDClientError) {
                let candidates: Set<Int64>
                if let layered {
                    candidates = layered.chunks
                } else {
                    candidates = try src.dataChunks(size: size, chunkSize: chunkSize).union(try b.dataChunks(size: size, chunkSize: chunkSize))
                }
                chunks = try differing(src, b, candidates: candidates)
            } catch { throw .nbd(error) }
        } else {
            do { chunks = try src.dataChunks(size: size, chunkSize: chunkSize) } catch { throw .nbd(error) }
        }
        switch format {
        case .raw:
            return Plan(length: UInt64(size), layout: nil, chunks: chunks)
        case .vhd:
            let layout: VHDStreamLayout
            do {
                layout = try VHDStreamLayout(virtualSize: UInt64(size), blocks: chunks.map { Int($0) }, uuid: uuid,
                                             parent: base == nil ? nil : parent)
            } catch { throw .mismatch("\(error)") }
            return Plan(length: layout.length, layout: layout, chunks: chunks)
        }
    }

    /// The candidate chunks whose bytes differ between `a` and `b`.
    private func differing(_ a: NBDClient, _ b: NBDClient, candidates: Set<Int64>) throws(NBDClientError) -> Set<Int64> {
        let one = UnsafeMutableRawBufferPointer.allocate(byteCount: Int(chunkSize), alignment: 4096)
        let two = UnsafeMutableRawBufferPointer.allocate(byteCount: Int(chunkSize), alignment: 4096)
        defer { one.deallocate(); two.deallocate() }
        var out = Set<Int64>()
        for i in candidates.sorted() {
            let n = Int(min(chunkSize, size - i * chunkSize))
            try a.read(into: UnsafeMutableRawBufferPointer(rebasing: one[0..<n]), at: i * chunkSize)
            try b.read(into: UnsafeMutableRawBufferPointer(rebasing: two[0..<n]), at: i * chunkSize)
            if memcmp(one.baseAddress!, two.baseAddress!, n) != 0 { out.insert(i) }
        }
        return out
    }

    /// Sends the stream `plan` describes to `sink`, in order; `progress` gets the bytes sent so
    /// far, `cancelled` is asked before each chunk.
    public func run(_ plan: Plan, sink: (UnsafeRawBufferPointer) throws -> Void, progress: (UInt64) -> Void,
                    cancelled: () -> Bool) throws {
        let src = try VDICopier.connect(source)
        let order: [Int64] = plan.layout.map { $0.blocks.map { Int64($0) } } ?? Array(0..<((size + chunkSize - 1) / chunkSize))
        var sent: UInt64 = 0
        func send(_ bytes: UnsafeRawBufferPointer) throws {
            try sink(bytes)
            sent += UInt64(bytes.count)
            progress(sent)
        }
        if let layout = plan.layout { try layout.prefix.withUnsafeBytes { try send($0) } }
        let count = Int(chunkSize)
        var current = UnsafeMutableRawBufferPointer.allocate(byteCount: count, alignment: 4096)
        var ahead = UnsafeMutableRawBufferPointer.allocate(byteCount: count, alignment: 4096)
        defer { current.deallocate(); ahead.deallocate() }
        // Fills `buffer` with chunk `i`: its data when it holds any, else zeros (a VHD block's
        // tail past the virtual size too).
        let fill: (Int64, UnsafeMutableRawBufferPointer) -> Result<Int, NBDClientError> = { [size, chunkSize] i, buffer in
            let n = Int(min(chunkSize, size - i * chunkSize))
            if n < count || !plan.chunks.contains(i) { buffer.initializeMemory(as: UInt8.self, repeating: 0) }
            if plan.chunks.contains(i) {
                do throws(NBDClientError) {
                    try src.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<n]), at: i * chunkSize)
                } catch {
                    return .failure(error)
                }
            }
            return .success(plan.layout == nil ? n : count)
        }
        var read = order.isEmpty ? nil : fill(order[0], current)
        for k in order.indices {
            if cancelled() { throw VDICopyError.cancelled }
            let length = try read!.get()
            // The next chunk is read while this one is sent.
            let target = ahead
            let next = k + 1 < order.count ? ReadAhead { fill(order[k + 1], target) } : nil
            do {
                if let layout = plan.layout { try layout.blockHead.withUnsafeBytes { try send($0) } }
                try send(UnsafeRawBufferPointer(rebasing: current[0..<length]))
            } catch {
                _ = next?.wait()
                throw error
            }
            read = next?.wait()
            swap(&current, &ahead)
        }
        if let layout = plan.layout { try layout.footer.withUnsafeBytes { try send($0) } }
    }
}
