/// LV and tag operations on the VG value. Each checks its arguments and changes nothing when it
/// throws; the caller commits the result through `PVDevice.commit`.
extension VolumeGroup {
    /// Extents that hold `bytes` (rounded up).
    public func extents(forBytes bytes: UInt64) -> UInt64 { (bytes + extentBytes - 1) / extentBytes }

    /// Index of the LV called `name`.
    private func index(of name: String) throws -> Int {
        guard let i = logicalVolumes.firstIndex(where: { $0.name == name }) else { throw LVMError.lvNotFound(name) }
        return i
    }

    /// Picks `count` free extents: extending `after` (a PV range end) in place if it can, else the
    /// smallest free range that holds them all, else the largest ranges first.
    func allocate(_ count: UInt64, continuing after: (pv: String, end: UInt64)? = nil) throws -> [(pv: String, extents: Range<UInt64>)] {
        let free = freeRanges()
        let total = free.reduce(0) { $0 + UInt64($1.extents.count) }
        guard count <= total else { throw LVMError.insufficientSpace(needed: count, free: total) }
        if count == 0 { return [] }
        var out: [(pv: String, extents: Range<UInt64>)] = []
        var need = count
        var pool = free
        if let after, let i = pool.firstIndex(where: { $0.pv == after.pv && $0.extents.lowerBound == after.end }) {
            let take = min(need, UInt64(pool[i].extents.count))
            out.append((after.pv, after.end..<after.end + take))
            need -= take
            pool.remove(at: i)
            if need == 0 { return out }
        }
        if let fit = pool.filter({ UInt64($0.extents.count) >= need }).min(by: { $0.extents.count < $1.extents.count }) {
            out.append((fit.pv, fit.extents.lowerBound..<fit.extents.lowerBound + need))
            return out
        }
        for r in pool.sorted(by: { $0.extents.count > $1.extents.count }) where need > 0 {
            let take = min(need, UInt64(r.extents.count))
            out.append((r.pv, r.extents.lowerBound..<r.extents.lowerBound + take))
            need -= take
        }
        return out
    }

    /// Appends `ranges` to the segments of the LV at `i`, merging with a segment it continues.
    private mutating func append(_ ranges: [(pv: String, extents: Range<UInt64>)], toLV i: Int) {
        for r in ranges {
            let start = logicalVolumes[i].extentCount
            if var last = logicalVolumes[i].segments.last, last.pv == r.pv, last.pvExtents.upperBound == r.extents.lowerBound {
                last.extentCount += UInt64(r.extents.count)
                logicalVolumes[i].segments[logicalVolumes[i].segments.count - 1] = last
            } else {
                logicalVolumes[i].segments.append(LVSegment(startExtent: start, extentCount: UInt64(r.extents.count),
                                                            pv: r.pv, pvExtent: r.extents.lowerBound))
            }
        }
    }

    /// Creates a linear LV of `extents` extents (contiguous when possible) and returns it.
    @discardableResult
    public mutating func createLV(name: String, extents: UInt64, tags: [String] = [], readOnly: Bool = false,
                                  id: LVMUUID = .random(), host: String = LVMHost.name, time: Int64 = LVMHost.now()) throws -> LogicalVolume {
        try LVMName.checkLV(name)
        for t in tags { try LVMName.checkTag(t) }
        guard lv(name) == nil else { throw LVMError.lvExists(name) }
        guard extents > 0 else { throw LVMError.invalidArgument("an LV needs at least one extent") }
        guard maxLV == 0 || UInt64(logicalVolumes.count) < maxLV else { throw LVMError.invalidArgument("VG holds max_lv = \(maxLV) LVs") }
        let ranges = try allocate(extents)
        var copy = self
        copy.logicalVolumes.append(LogicalVolume(name: name, id: id, status: readOnly ? ["READ", "VISIBLE"] : ["READ", "WRITE", "VISIBLE"],
                                                 tags: Array(Set(tags)).sorted(), creationTime: time, creationHost: host))
        copy.append(ranges, toLV: copy.logicalVolumes.count - 1)
        self = copy
        return copy.logicalVolumes.last!
    }

    /// Creates a linear LV holding at least `bytes` bytes.
    @discardableResult
    public mutating func createLV(name: String, bytes: UInt64, tags: [String] = [], readOnly: Bool = false) throws -> LogicalVolume {
        try createLV(name: name, extents: extents(forBytes: bytes), tags: tags, readOnly: readOnly)
    }

    /// Grows (continuing the last segment in place when it can) or shrinks (from the end) an LV to `extents`.
    public mutating func resizeLV(_ name: String, extents: UInt64) throws {
        let i = try index(of: name)
        guard extents > 0 else { throw LVMError.invalidArgument("an LV needs at least one extent") }
        let current = logicalVolumes[i].extentCount
        if extents > current {
            let last = logicalVolumes[i].segments.last.map { (pv: $0.pv, end: $0.pvExtents.upperBound) }
            let ranges = try allocate(extents - current, continuing: last)
            append(ranges, toLV: i)
        } else if extents < current {
            var segs = logicalVolumes[i].segments
            while let last = segs.last, last.startExtent >= extents { segs.removeLast() }
            if var last = segs.last { last.extentCount = extents - last.startExtent; segs[segs.count - 1] = last }
            logicalVolumes[i].segments = segs
        }
    }

    /// Resizes an LV to hold at least `bytes` bytes.
    public mutating func resizeLV(_ name: String, bytes: UInt64) throws {
        try resizeLV(name, extents: extents(forBytes: bytes))
    }

    /// Renames an LV.
    public mutating func renameLV(_ name: String, to newName: String) throws {
        try LVMName.checkLV(newName)
        let i = try index(of: name)
        guard lv(newName) == nil else { throw LVMError.lvExists(newName) }
        logicalVolumes[i].name = newName
    }

    /// Removes an LV (its extents become free).
    public mutating func removeLV(_ name: String) throws {
        logicalVolumes.remove(at: try index(of: name))
    }

    /// Adds `tag` to an LV (no change if it has it).
    public mutating func addTag(_ tag: String, toLV name: String) throws {
        try LVMName.checkTag(tag)
        let i = try index(of: name)
        if !logicalVolumes[i].tags.contains(tag) { logicalVolumes[i].tags.append(tag) }
    }

    /// Removes `tag` from an LV (no change if it lacks it).
    public mutating func removeTag(_ tag: String, fromLV name: String) throws {
        let i = try index(of: name)
        logicalVolumes[i].tags.removeAll { $0 == tag }
    }

    /// Adds `tag` to the VG.
    public mutating func addTag(_ tag: String) throws {
        try LVMName.checkTag(tag)
        if !tags.contains(tag) { tags.append(tag) }
    }

    /// Removes `tag` from the VG.
    public mutating func removeTag(_ tag: String) {
        tags.removeAll { $0 == tag }
    }

    /// Makes an LV read-only (status `READ`) or writable (`READ`, `WRITE`).
    public mutating func setReadOnly(_ readOnly: Bool, lv name: String) throws {
        let i = try index(of: name)
        var s = logicalVolumes[i].status.filter { $0 != "WRITE" }
        if !readOnly { s.insert("WRITE", at: (s.firstIndex(of: "READ") ?? -1) + 1) }
        logicalVolumes[i].status = s
    }
}
