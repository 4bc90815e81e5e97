import Foundation

/// The metadata of an extent volume group: its geometry, every volume (name → runs of extents,
/// tags, a stable id) and every journal entry (kept in extents of its own, like a volume). It is
/// stored whole, as JSON, in one of two slots of the group's first extent (`ExtentTableSlots`).
public struct ExtentTable: Codable, Equatable, Sendable {
    /// A run of consecutive extents.
    public struct Run: Codable, Equatable, Sendable {
        /// First extent.
        public var start: UInt64
        /// Number of extents.
        public var count: UInt64
    }

    /// One volume.
    public struct Volume: Codable, Equatable, Sendable {
        /// Identity that survives renames (open stores follow it).
        public var id: UInt64
        /// Where its bytes are, in order.
        public var runs: [Run]
        /// Its tags.
        public var tags: [String]
        /// Unix seconds of its creation or last resize.
        public var modified: Int

        /// Number of extents.
        public var extentCount: UInt64 { runs.reduce(0) { $0 + $1.count } }
    }

    /// One journal entry: `length` bytes at the start of its runs, with their checksum.
    public struct Journal: Codable, Equatable, Sendable {
        /// Where its bytes are.
        public var runs: [Run]
        /// Bytes held.
        public var length: UInt64
        /// FNV-1a of the bytes.
        public var checksum: UInt64
    }

    /// The volume group's name (the first component of provider paths).
    public var group: String
    /// Bytes per extent.
    public var extentSize: UInt64
    /// Extents in the backing file (extent 0 holds the table slots).
    public var extentCount: UInt64
    /// The next volume id.
    public var nextID: UInt64 = 1
    /// Volumes by name.
    public var volumes: [String: Volume] = [:]
    /// Journal entries by name.
    public var journals: [String: Journal] = [:]

    /// An empty group.
    public init(group: String, extentSize: UInt64, extentCount: UInt64) {
        self.group = group
        self.extentSize = extentSize
        self.extentCount = extentCount
    }

    /// Whether extent `e` is taken by a volume or a journal, as a bitmap over the extents.
    func usedExtents() -> [Bool] {
        var used = [Bool](repeating: false, count: Int(extentCount))
        used[0] = true
        for runs in volumes.values.map(\.runs) + journals.values.map(\.runs) {
            for r in runs { for e in r.start..<(r.start + r.count) { used[Int(e)] = true } }
        }
        return used
    }

    /// Extents no volume or journal holds.
    public var freeExtents: UInt64 { UInt64(usedExtents().lazy.filter { !$0 }.count) }

    /// Takes `count` free extents (first fit, as few runs as the free space allows); nil when
    /// there are not enough.
    func allocate(_ count: UInt64) -> [Run]? {
        guard count > 0 else { return [] }
        let used = usedExtents()
        var runs: [Run] = []
        var left = count
        var e = 1
        while e < used.count && left > 0 {
            if used[e] { e += 1; continue }
            var n: UInt64 = 0
            while e + Int(n) < used.count && !used[e + Int(n)] && n < left { n += 1 }
            runs.append(Run(start: UInt64(e), count: n))
            left -= n
            e += Int(n)
        }
        return left == 0 ? runs : nil
    }

    /// The first `count` extents of `runs`.
    static func prefix(_ runs: [Run], extents count: UInt64) -> [Run] {
        var out: [Run] = []
        var left = count
        for r in runs where left > 0 {
            let n = min(r.count, left)
            out.append(Run(start: r.start, count: n))
            left -= n
        }
        return out
    }

    /// JSON bytes (keys sorted, so equal tables encode equally).
    func encoded() throws -> [UInt8] {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        return Array(try e.encode(self))
    }

    /// Decodes JSON bytes.
    static func decode(_ bytes: [UInt8]) throws -> ExtentTable {
        try JSONDecoder().decode(ExtentTable.self, from: Data(bytes))
    }
}
