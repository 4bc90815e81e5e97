import Foundation

/// Where one volume's bytes are right now, shared by every store open on it in this process:
/// a resize or removal through the group updates it, as a device-mapper table change reaches
/// every open descriptor of an LV.
public final class ExtentMapping: @unchecked Sendable {
    /// Bytes per extent.
    public let extentSize: UInt64
    private let lock = NSLock()
    // Guarded by `lock`.
    private var runs: [ExtentTable.Run]
    private var removed = false

    /// A mapping over `runs`.
    init(runs: [ExtentTable.Run], extentSize: UInt64) {
        self.runs = runs
        self.extentSize = extentSize
    }

    /// The volume's runs now, nil once it was removed.
    var current: [ExtentTable.Run]? { lock.withLock { removed ? nil : runs } }

    /// The volume's size in bytes now (0 once removed).
    var size: UInt64 { lock.withLock { removed ? 0 : runs.reduce(0) { $0 + $1.count } * extentSize } }

    /// Follows a table change.
    func update(_ runs: [ExtentTable.Run]) { lock.withLock { self.runs = runs; removed = false } }

    /// The volume is gone: I/O fails from now on.
    func remove() { lock.withLock { removed = true } }

    /// The byte ranges of the backing file holding `count` bytes at `offset` of the volume, in
    /// order (the caller checked the bounds against `runs`).
    static func segments(_ runs: [ExtentTable.Run], extentSize: UInt64, offset: UInt64, count: Int) -> [(physical: UInt64, length: Int)] {
        var out: [(UInt64, Int)] = []
        var logical = offset
        var left = UInt64(count)
        var runStart: UInt64 = 0
        for r in runs where left > 0 {
            let runBytes = r.count * extentSize
            if logical < runStart + runBytes {
                let within = logical - runStart
                let n = min(left, runBytes - within)
                out.append((r.start * extentSize + within, Int(n)))
                logical += n
                left -= n
            }
            runStart += runBytes
        }
        return out
    }
}
