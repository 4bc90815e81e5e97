/// Counters of one datapath, as the control socket's `stats` reports them (one JSON object).
public struct DatapathStats: Sendable, Codable, Equatable {
    /// The volume the chain is (or will be) opened from (a name within the SR's container).
    public var leaf: String = ""
    /// The footer uuids of the open chain's VHDs, leaf first (what `qemu:allocation-depth`
    /// counts); empty while paused.
    public var layers: [String] = []
    /// Whether the chain is paused (closed, requests held).
    public var paused: Bool = false
    /// Whether the export refuses writes.
    public var readOnly: Bool = false
    /// Virtual size of the served disk in bytes.
    public var size: UInt64 = 0
    /// Requests completed (all types).
    public var requests: UInt64 = 0
    /// READ requests completed.
    public var reads: UInt64 = 0
    /// WRITE requests completed.
    public var writes: UInt64 = 0
    /// FLUSH requests completed.
    public var flushes: UInt64 = 0
    /// WRITE_ZEROES requests completed.
    public var writeZeroes: UInt64 = 0
    /// TRIM requests completed.
    public var trims: UInt64 = 0
    /// BLOCK_STATUS requests completed.
    public var blockStatus: UInt64 = 0
    /// Requests answered with an error.
    public var errors: UInt64 = 0
    /// Bytes returned by READ.
    public var bytesRead: UInt64 = 0
    /// Bytes stored by WRITE (WRITE_ZEROES not included).
    public var bytesWritten: UInt64 = 0
    /// Bytes zeroed by WRITE_ZEROES.
    public var bytesZeroed: UInt64 = 0
    /// Sum of request latencies (queued to done) in microseconds.
    public var latencyTotalMicros: UInt64 = 0
    /// Largest request latency in microseconds.
    public var latencyMaxMicros: UInt64 = 0
    /// Mean request latency in microseconds.
    public var latencyMeanMicros: UInt64 = 0
    /// Requests waiting for the chain thread right now.
    public var queued: Int = 0
    /// NBD connections open right now.
    public var connections: Int = 0
    /// NBD connections accepted since start.
    public var connectionsTotal: UInt64 = 0
    /// Times the chain was paused.
    public var pauses: UInt64 = 0
    /// Times the chain was reopened while running (`refresh`).
    public var refreshes: UInt64 = 0
    /// Plain WRITEs into blocks the leaf holds that skipped the chain thread: written by the event
    /// loop itself (a file), or sent from an I/O thread (a network store) (see `ChainWorker.writeFast`).
    public var fastWrites: UInt64 = 0
    /// Fast writes the kernel held up (dirty-page throttling), after which writes took the chain
    /// thread for a while so that the event loop stayed free (other connections, control).
    public var fastWriteStalls: UInt64 = 0
    /// READs the event loop planned for blocks the leaf holds in part, from their sector maps.
    public var mixedReads: UInt64 = 0
    /// Fast writes into sectors a partly held block already has.
    public var mixedWrites: UInt64 = 0
    /// Small WRITEs the event loop ran through the engine itself while the chain thread was idle.
    public var inlineWrites: UInt64 = 0
    /// WRITEs whose data went out from an I/O thread, several in flight (`PlannedWrite`).
    public var plannedWrites: UInt64 = 0
    /// Seconds the storage server has not answered while requests wait for it (the NFS hold
    /// policy), nil while it answers.
    public var holdingSeconds: Double? = nil
    /// Storage operations waiting for the server right now.
    public var holdingOperations: Int = 0
    /// Storage operations that have had to wait for the server since the chain was opened.
    public var heldOperations: UInt64 = 0
    /// Paths to the storage that work (an iSCSI LUN through several portals), nil with one way to it.
    public var activePaths: Int? = nil
    /// Paths to the storage there are, nil with one way to it.
    public var totalPaths: Int? = nil
    /// The TCP port when serving on 127.0.0.1 too.
    public var tcpPort: Int? = nil
    /// The export a live migration mirrors changes to, while it runs.
    public var mirrorTarget: String? = nil
    /// Bytes of changes the mirror made on the destination.
    public var mirrorBytes: UInt64? = nil
    /// Why the mirror stopped mirroring, when it failed.
    public var mirrorFailure: String? = nil

    /// Empty counters.
    public init() {}

}

/// Which counter a request belongs to.
public enum DatapathRequestKind: Sendable {
    /// READ.
    case read
    /// WRITE.
    case write
    /// FLUSH.
    case flush
    /// WRITE_ZEROES.
    case writeZeroes
    /// TRIM.
    case trim
    /// BLOCK_STATUS.
    case blockStatus
    /// CACHE and anything else counted only in `requests`.
    case other
}

extension DatapathStats {
    /// Counts one finished request of `kind` moving `bytes`, `micros` after it was queued.
    mutating func record(_ kind: DatapathRequestKind, bytes: UInt64, micros: UInt64, failed: Bool) {
        requests += 1
        latencyTotalMicros += micros
        latencyMaxMicros = max(latencyMaxMicros, micros)
        latencyMeanMicros = latencyTotalMicros / requests
        if failed { errors += 1; return }
        switch kind {
        case .read: reads += 1; bytesRead += bytes
        case .write: writes += 1; bytesWritten += bytes
        case .flush: flushes += 1
        case .writeZeroes: writeZeroes += 1; bytesZeroed += bytes
        case .trim: trims += 1
        case .blockStatus: blockStatus += 1
        case .other: break
        }
    }
}
