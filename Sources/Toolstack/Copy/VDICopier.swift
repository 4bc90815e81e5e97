import Foundation
import LibNBD
import VHD

/// Copies one VDI's data into another through their data paths' NBD exports: plans from the
/// `base:allocation` maps which chunks move (only allocated data; zeros only where the
/// destination has data; with a base, only chunks that differ from it), then runs the plan
/// with several connections, each reading its next chunk while it writes the current one, and flushes.
///
/// A delta against a base that shares images with the source is planned from the two chains
/// when their layers are known (`LayeredDelta`): work in proportion to the delta; otherwise
/// every chunk either holds is compared.
public final class VDICopier: @unchecked Sendable {
    /// The source's export.
    public let source: NBDExport
    /// The destination's export.
    public let destination: NBDExport
    /// The base's export for a delta copy.
    public let base: NBDExport?
    /// Bytes per chunk (a VHD block: 2 MiB).
    public let chunkSize: Int64
    /// Connections (and so requests in flight) per export.
    public let connections: Int
    /// Microseconds each worker sleeps after each chunk (0; tests slow a copy down to stop it midway).
    public let delayPerChunk: UInt32
    /// The layers of the source's and the base's open chains, leaf first (nil: not known).
    public let layers: (@Sendable () throws -> (source: [String], base: [String]))?
    /// How the last delta plan was made: "layers <above source> <above base>" (from the chains)
    /// or "contents" (every chunk either holds); nil for a full copy.
    public private(set) var deltaBasis: String?

    /// A copier from `source` into `destination`, with `base` for a delta copy.
    public init(source: NBDExport, destination: NBDExport, base: NBDExport? = nil, chunkSize: Int64 = 2 << 20, connections: Int = 8,
                delayPerChunk: UInt32 = 0, layers: (@Sendable () throws -> (source: [String], base: [String]))? = nil) {
        self.delayPerChunk = delayPerChunk
        self.layers = layers
        self.source = source
        self.destination = destination
        self.base = base
        self.chunkSize = chunkSize
        self.connections = max(1, connections)
    }

    static func connect(_ e: NBDExport, allocationDepth: Bool = false) throws(VDICopyError) -> NBDClient {
        do { return try NBDClient(socketPath: e.socketPath, exportName: e.exportName, allocationDepth: allocationDepth) } catch { throw .nbd(error) }
    }

    private func dataChunks(_ client: NBDClient, size: Int64) throws(VDICopyError) -> Set<Int64> {
        do { return try client.dataChunks(size: size, chunkSize: chunkSize) } catch { throw .nbd(error) }
    }

    /// The plan for the first `size` bytes (the source's virtual size); `destinationIsNew`
    /// when the destination was made empty for this copy (it reads zeros everywhere).
    public func plan(size: Int64, destinationIsNew: Bool) throws(VDICopyError) -> [CopyChunk] {
        let planFromLayers = base != nil && layers != nil
        let src = try Self.connect(source, allocationDepth: planFromLayers)
        let dst = try Self.connect(destination)
        guard src.size >= size else { throw .mismatch("the source export has \(src.size) bytes, \(size) expected") }
        guard dst.size >= size else { throw .mismatch("the destination export has \(dst.size) bytes, the source \(size)") }
        let count = (size + chunkSize - 1) / chunkSize
        func chunk(_ i: Int64, _ action: CopyChunk.Action, destinationZero: Bool = false) -> CopyChunk {
            CopyChunk(offset: i * chunkSize, length: min(chunkSize, size - i * chunkSize), action: action, destinationZero: destinationZero)
        }
        if let base {
            // A delta reads the destination nowhere: its chunks are compared with the base.
            let b = try Self.connect(base, allocationDepth: planFromLayers)
            guard b.size >= size else { throw .mismatch("the base has \(b.size) bytes, the source \(size)") }
            if let layers, let delta = try LayeredDelta(layers: layers).chunks(source: src, base: b, size: size, chunkSize: chunkSize) {
                deltaBasis = delta.basis
                return delta.chunks.sorted().map { chunk($0, .delta) }
            }
            deltaBasis = "contents"
            let candidates = try dataChunks(src, size: size).union(try dataChunks(b, size: size))
            return candidates.sorted().map { chunk($0, .delta) }
        }
        let srcData = try dataChunks(src, size: size)
        let dstData: Set<Int64> = try destinationIsNew ? [] : dataChunks(dst, size: size)
        var out: [CopyChunk] = []
        for i in 0..<count {
            if srcData.contains(i) {
                out.append(chunk(i, .copy, destinationZero: !dstData.contains(i)))
            } else if dstData.contains(i) {
                out.append(chunk(i, .zero))
            }
        }
        return out
    }

    /// Runs `plan`: `progress` is called with the bytes done so far (from any worker thread);
    /// `cancelled` is asked before each chunk. Returns the bytes written to the destination.
    @discardableResult
    public func run(_ plan: [CopyChunk], progress: @escaping @Sendable (Int64) -> Void,
                    cancelled: @escaping @Sendable () -> Bool) throws(VDICopyError) -> Int64 {
        let state = RunState()
        let group = DispatchGroup()
        for _ in 0..<min(connections, max(1, plan.count)) {
            group.enter()
            let thread = Thread { [self] in
                defer { group.leave() }
                do { try work(plan, state, progress, cancelled) } catch { state.fail(error) }
            }
            thread.stackSize = 1 << 20
            thread.start()
        }
        group.wait()
        if let error = state.error { throw error }
        return state.written
    }

    private func work(_ plan: [CopyChunk], _ state: RunState, _ progress: @Sendable (Int64) -> Void,
                      _ cancelled: @Sendable () -> Bool) throws(VDICopyError) {
        let src = try Self.connect(source)
        let dst = try Self.connect(destination)
        let b = try base.map { e throws(VDICopyError) in try Self.connect(e) }
        var current = ChunkBuffers(Int(chunkSize), delta: base != nil), ahead = ChunkBuffers(Int(chunkSize), delta: base != nil)
        defer { current.deallocate(); ahead.deallocate() }
        // Reads what chunk `c` needs (the source's bytes; for a delta the base's too).
        let fetch: (CopyChunk, ChunkBuffers) -> NBDClientError? = { c, buffers in
            let n = Int(c.length)
            do throws(NBDClientError) {
                if c.action != .zero { try src.read(into: UnsafeMutableRawBufferPointer(rebasing: buffers.data[0..<n]), at: c.offset) }
                if c.action == .delta { try b!.read(into: UnsafeMutableRawBufferPointer(rebasing: buffers.old![0..<n]), at: c.offset) }
                return nil
            } catch { return error }
        }
        var wrote = false
        var chunk = state.next(plan.count).map { plan[$0] }
        var fetched = chunk.map { fetch($0, current) }
        while let c = chunk {
            if cancelled() { state.fail(VDICopyError.cancelled); return }
            if let error = fetched ?? nil { throw .nbd(error) }
            // The next chunk is read while this one is written.
            let following = state.next(plan.count).map { plan[$0] }
            let target = ahead
            let reading = following.map { f in ReadAhead { fetch(f, target) } }
            let n = Int(c.length)
            let data = UnsafeRawBufferPointer(rebasing: current.data[0..<n])
            var written: Int64 = 0
            do {
                switch c.action {
                case .zero:
                    try dst.writeZeros(length: c.length, at: c.offset)
                    written = c.length
                case .copy:
                    if !(c.destinationZero && Convert.isZero(data)) {
                        try dst.write(data, at: c.offset)
                        written = c.length
                    }
                case .delta:
                    if memcmp(data.baseAddress!, current.old!.baseAddress!, n) != 0 {
                        try dst.write(data, at: c.offset)
                        written = c.length
                    }
                }
            } catch {
                _ = reading?.wait()
                throw .nbd(error)
            }
            fetched = reading?.wait()
            if written > 0 { wrote = true }
            progress(state.add(done: c.length, written: written))
            if state.error != nil { return }
            if delayPerChunk > 0 { usleep(delayPerChunk) }
            chunk = following
            swap(&current, &ahead)
        }
        if wrote { do { try dst.flush() } catch { throw .nbd(error) } }
    }
}

/// A chunk's buffers: the source's bytes and, for a delta, the base's.
private struct ChunkBuffers: @unchecked Sendable {
    let data: UnsafeMutableRawBufferPointer
    let old: UnsafeMutableRawBufferPointer?

    init(_ size: Int, delta: Bool) {
        data = .allocate(byteCount: size, alignment: 4096)
        old = delta ? .allocate(byteCount: size, alignment: 4096) : nil
    }

    func deallocate() {
        data.deallocate()
        old?.deallocate()
    }
}

/// The shared state of one run: the next chunk, the totals, the first error.
private final class RunState: @unchecked Sendable {
    private let lock = NSLock()
    private var index = 0
    private var done: Int64 = 0
    private(set) var written: Int64 = 0
    private var firstError: VDICopyError?

    var error: VDICopyError? { lock.lock(); defer { lock.unlock() }; return firstError }

    func next(_ count: Int) -> Int? {
        lock.lock(); defer { lock.unlock() }
        guard firstError == nil, index < count else { return nil }
        index += 1
        return index - 1
    }

    func add(done d: Int64, written w: Int64) -> Int64 {
        lock.lock(); defer { lock.unlock() }
        done += d
        written += w
        return done
    }

    func fail(_ error: any Error) {
        lock.lock(); defer { lock.unlock() }
        if firstError == nil { firstError = (error as? VDICopyError) ?? .mismatch("\(error)") }
    }
}
