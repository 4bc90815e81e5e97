import VHD
#if canImport(Glibc)
import Glibc
#endif

/// Where the bytes of one READ live: pieces of image files (descriptor, offset) and zero ranges,
/// worked out on the chain thread from the chain's metadata so that the preads themselves can run
/// on I/O threads, several requests at once (the disk sees a queue, not one read at a time).
/// Pieces only name data that no write can move: writes go to sectors of the leaf that are
/// already allocated (in place) or to new blocks at the end of the file, and the chain is not
/// closed until every planned read has finished.
struct ReadPlan: Sendable {
    /// One part of the request's buffer.
    enum Piece: Sendable {
        /// `count` bytes at `offset` of file descriptor `fd`, into the buffer at `at`.
        case file(fd: Int32, offset: UInt64, at: Int, count: Int)
        /// `count` zero bytes at `at`.
        case zero(at: Int, count: Int)
    }

    /// The pieces, covering the request exactly once.
    var pieces: [Piece] = []
    /// Bytes of the request.
    let length: Int

    /// The plan of `length` bytes at `offset`, or nil when a direct read is needed (unaligned
    /// requests, stores that are not plain files).
    static func make(_ chain: VHDChain, offset: UInt64, length: Int) -> ReadPlan? {
        guard offset % 512 == 0, length % 512 == 0, length > 0 else { return nil }
        var plan = ReadPlan(length: length)
        do {
            guard try plan.walk(chain, layer: 0, at: 0, count: length, sector: offset / 512) else { return nil }
        } catch {
            return nil
        }
        return plan
    }

    /// Adds the pieces for `count` bytes (sector-aligned) at buffer offset `at`, as seen from
    /// layer `layer` down (the same walk as `VHDChain.readSectors`). False when a store is not a file.
    mutating func walk(_ chain: VHDChain, layer: Int, at: Int, count: Int, sector: UInt64) throws -> Bool {
        if layer == chain.images.count {
            guard let raw = chain.rawParent else { zero(at, count); return true }
            guard let file = raw as? FileStore else { return false }
            let start = sector * 512
            let available = start >= raw.size ? 0 : Int(min(UInt64(count), raw.size - start))
            if available > 0 { add(file.descriptor.rawValue, start, at, available) }
            if available < count { zero(at + available, count - available) }
            return true
        }
        let image = chain.images[layer]
        guard let file = image.store as? FileStore else { return false }
        let fd = file.descriptor.rawValue
        let start = sector * 512
        let inside = start >= image.virtualSize ? 0 : Int(min(UInt64(count), image.virtualSize - start))
        if inside < count { zero(at + inside, count - inside) }
        guard inside > 0 else { return true }
        if image.diskType == .fixed {
            add(fd, start, at, inside)
            return true
        }
        let spb = UInt64(image.sectorsPerBlock)
        var done = 0
        var s = sector
        var ok = true
        while done < inside {
            let b = Int(s / spb)
            let first = Int(s % spb)
            let n = min(image.sectorsPerBlock - first, (inside - done + 511) / 512)
            let base = done
            try image.forEachRun(block: b, from: first, count: n) { runStart, runCount, present in
                let lo = base + (runStart - first) * 512
                let hi = min(lo + runCount * 512, inside)
                if present {
                    add(fd, image.dataOffset(block: b, sector: runStart), at + lo, hi - lo)
                } else if !(try walk(chain, layer: layer + 1, at: at + lo, count: hi - lo,
                                     sector: UInt64(b) * spb + UInt64(runStart))) {
                    ok = false
                }
            }
            done += n * 512
            s += UInt64(n)
        }
        return ok
    }

    mutating func add(_ fd: Int32, _ offset: UInt64, _ at: Int, _ count: Int) {
        if case let .file(lfd, loff, lat, lcount)? = pieces.last, lfd == fd, loff + UInt64(lcount) == offset, lat + lcount == at {
            pieces[pieces.count - 1] = .file(fd: fd, offset: loff, at: lat, count: lcount + count)
        } else {
            pieces.append(.file(fd: fd, offset: offset, at: at, count: count))
        }
    }

    mutating func zero(_ at: Int, _ count: Int) {
        if case let .zero(lat, lcount)? = pieces.last, lat + lcount == at {
            pieces[pieces.count - 1] = .zero(at: lat, count: lcount + count)
        } else {
            pieces.append(.zero(at: at, count: count))
        }
    }

    /// Reads every piece into `buffer` (`length` bytes); throws `VHDError.io` or `.shortRead`.
    func execute(into buffer: UnsafeMutableRawBufferPointer) throws {
        for piece in pieces {
            switch piece {
            case let .zero(at, count):
                UnsafeMutableRawBufferPointer(rebasing: buffer[at..<at + count]).initializeMemory(as: UInt8.self, repeating: 0)
            case let .file(fd, offset, at, count):
                var done = 0
                while done < count {
                    let n = pread(fd, buffer.baseAddress! + at + done, count - done, off_t(offset) + off_t(done))
                    if n < 0 {
                        if errno == EINTR { continue }
                        throw VHDError.io(path: "fd \(fd)", operation: "read", errno: errno)
                    }
                    if n == 0 { throw VHDError.shortRead(path: "fd \(fd)", offset: offset + UInt64(done), count: count - done) }
                    done += n
                }
            }
        }
    }
}
