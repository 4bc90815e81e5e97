import Foundation

/// What the collector of an SR is doing, as `smdriver gc --status` prints it and the status file
/// holds it: the work it found, the step it is on, the bytes merged and how fast, the pauses it
/// imposed on running disks.
public struct GCStatus: Codable, Sendable, Equatable {
    /// `running`, `waiting` (with `--interval`, between passes), `idle` (finished, nothing left), `aborted`, `failed`.
    public var state: String = "running"
    /// Process id of the collector.
    public var pid: Int32 = getpid()
    /// The step in progress (`coalesce <node> into <parent>`, ...), empty between steps.
    public var step: String = ""
    /// Garbage VDIs waiting for removal.
    public var queuedGarbage: Int = 0
    /// Hidden nodes waiting to be coalesced.
    public var queuedCoalesce: Int = 0
    /// Leaves waiting to be coalesced.
    public var queuedLeafCoalesce: Int = 0
    /// Bytes merged by the step in progress.
    public var stepBytesDone: UInt64 = 0
    /// Bytes the step in progress has to merge (an upper bound: allocated blocks).
    public var stepBytesTotal: UInt64 = 0
    /// Bytes merged since the collector started.
    public var bytesDone: UInt64 = 0
    /// Merge speed of the step in progress, or of the last one, in MB/s.
    public var megabytesPerSecond: Double = 0
    /// Garbage VDIs removed since the collector started.
    public var removed: Int = 0
    /// Nodes coalesced since the collector started.
    public var coalesced: Int = 0
    /// Leaves coalesced since the collector started.
    public var leafCoalesced: Int = 0
    /// Longest pause of a running disk, in seconds.
    public var longestPause: Double = 0
    /// Why the last leaf coalesce gave up, if it did.
    public var lastGiveUp: String = ""
    /// VDIs not merged for want of free space since the collector started, with needed and free
    /// bytes (each retried by a later run or pass).
    public var skippedForSpace: [String: String] = [:]
    /// The last error, if the collector failed.
    public var error: String = ""
    /// When this status was written (seconds since 1970).
    public var updated: Double = Date().timeIntervalSince1970

    /// An empty status.
    public init() {}

    /// One line for logs and progress output.
    public var summary: String {
        var s = "\(state): garbage \(queuedGarbage), coalesce \(queuedCoalesce), leaf \(queuedLeafCoalesce)"
        if !step.isEmpty {
            s += "; \(step) \(ByteCount.describe(stepBytesDone))/\(ByteCount.describe(stepBytesTotal))"
            s += String(format: " at %.1f MB/s", megabytesPerSecond)
        }
        s += "; done: removed \(removed), coalesced \(coalesced), leaf \(leafCoalesced), \(ByteCount.describe(bytesDone))"
        s += String(format: ", longest pause %.3f s", longestPause)
        if !skippedForSpace.isEmpty { s += "; skipped for space: \(skippedForSpace.count)" }
        return s
    }
}

extension GCStatus {
    /// Reads a status file; fields it lacks (one written by an older collector) take their
    /// defaults instead of failing the whole file.
    public static func decoded(from data: Data) throws -> GCStatus {
        if let status = try? JSONDecoder().decode(GCStatus.self, from: data) { return status }
        guard var fields = try JSONSerialization.jsonObject(with: JSONEncoder().encode(GCStatus())) as? [String: Any],
              let found = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw DecodingError.dataCorrupted(.init(codingPath: [], debugDescription: "a GC status is a JSON object"))
        }
        fields.merge(found) { _, fromFile in fromFile }
        return try JSONDecoder().decode(GCStatus.self, from: JSONSerialization.data(withJSONObject: fields))
    }
}
