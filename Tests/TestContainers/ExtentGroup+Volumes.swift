import Foundation
import VHD
#if canImport(Glibc)
import Glibc
#endif

/// Volume and journal operations of an extent group, each one committed table (so each is
/// atomic): create, resize, rename, remove, tags; journal entries kept in extents of their own,
/// written and synced before the table that names them is committed.
extension ExtentGroup {
    /// Extents holding `bytes` (at least one).
    public func extents(for bytes: UInt64) -> UInt64 { max(1, (bytes + extentSize - 1) / extentSize) }

    /// Creates volume `name` of `bytes` rounded up to whole extents; its last sector is zeroed
    /// first, so no stale footer of an earlier volume is found there.
    public func createVolume(_ name: String, bytes: UInt64) throws {
        try update { t in
            guard t.volumes[name] == nil else { throw VHDError.io(path: name, operation: "create", errno: EEXIST) }
            let n = extents(for: bytes)
            guard let runs = t.allocate(n) else { throw noSpace(name, n, t) }
            try zeroLastSector(of: runs)
            t.volumes[name] = ExtentTable.Volume(id: t.nextID, runs: runs, tags: [], modified: Int(time(nil)))
            t.nextID += 1
        }
    }

    /// Makes volume `name` `bytes` long, rounded up to whole extents: extents are appended (the
    /// new last sector zeroed, or holding `lastSector`, before the commit that adds them) or
    /// taken from the end.
    public func resizeVolume(_ name: String, bytes: UInt64, lastSector: [UInt8]? = nil) throws {
        try update { t in
            guard var v = t.volumes[name] else { throw VHDError.io(path: name, operation: "resize", errno: ENOENT) }
            let n = extents(for: bytes), have = v.extentCount
            if n == have { return }
            if n < have {
                v.runs = ExtentTable.prefix(v.runs, extents: n)
            } else {
                guard let more = t.allocate(n - have) else { throw noSpace(name, n - have, t) }
                try zeroLastSector(of: more, with: lastSector)
                for r in more {
                    if let last = v.runs.last, last.start + last.count == r.start { v.runs[v.runs.count - 1].count += r.count }
                    else { v.runs.append(r) }
                }
            }
            v.modified = Int(time(nil))
            t.volumes[name] = v
        }
    }

    /// Removes volume `name` (its extents become free).
    public func removeVolume(_ name: String) throws {
        try update { t in
            guard t.volumes.removeValue(forKey: name) != nil else { throw VHDError.io(path: name, operation: "remove", errno: ENOENT) }
        }
    }

    /// Renames volume `name` to `to`, replacing a volume of that name, in one commit.
    public func renameVolume(_ name: String, to: String) throws {
        try update { t in
            guard let v = t.volumes.removeValue(forKey: name) else { throw VHDError.io(path: name, operation: "rename", errno: ENOENT) }
            t.volumes[to] = v
        }
    }

    /// Replaces the tags of volume `name`.
    public func setTags(_ tags: Set<String>, of name: String) throws {
        try update { t in
            guard t.volumes[name] != nil else { throw VHDError.io(path: name, operation: "tag", errno: ENOENT) }
            t.volumes[name]!.tags = tags.sorted()
        }
    }

    /// Stores journal entry `name`: the bytes go to newly allocated extents, synced, then one
    /// commit names them (and frees those of the entry it replaces). The new extents are free
    /// in the committed table, so a crash before the commit leaves the old entry intact.
    public func writeJournal(_ name: String, _ bytes: [UInt8]) throws {
        try update { t in
            let n = extents(for: UInt64(bytes.count))
            guard let runs = t.allocate(n) else { throw noSpace("journal " + name, n, t) }
            try write(bytes, into: runs, at: 0)
            try sync()
            t.journals[name] = ExtentTable.Journal(runs: runs, length: UInt64(bytes.count), checksum: FNV1a.hash(bytes))
        }
    }

    /// The bytes of journal entry `name` (checked against their checksum), nil without one.
    public func journal(_ name: String) throws -> [UInt8]? {
        guard let j = table.journals[name] else { return nil }
        let bytes = try read(j.runs, count: Int(j.length), at: 0)
        guard FNV1a.hash(bytes) == j.checksum else { throw VHDError.invalidArgument("journal \(name) fails its checksum") }
        return bytes
    }

    /// Removes journal entry `name` (nothing when there is none).
    public func removeJournal(_ name: String) throws {
        try update { t in t.journals[name] = nil }
    }

    private func zeroLastSector(of runs: [ExtentTable.Run], with bytes: [UInt8]? = nil) throws {
        guard let last = runs.last else { return }
        try ExtentIO.write(fd, bytes ?? [UInt8](repeating: 0, count: 512), at: (last.start + last.count) * extentSize - 512)
        try sync()
    }

    private func noSpace(_ what: String, _ extents: UInt64, _ t: ExtentTable) -> VHDError {
        .noSpace(path: what, needed: extents * extentSize, available: t.freeExtents * extentSize)
    }
}
