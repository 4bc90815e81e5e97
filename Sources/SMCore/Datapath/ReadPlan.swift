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

    /// The plan of `length` bytes at `offset` (from the chain's own read mapping), or nil when a
    /// direct read is needed (unaligned requests, stores that are not plain files).
    static func make(_ chain: VHDChain, offset: UInt64, length: Int) -> ReadPlan? {
        guard offset % 512 == 0, length % 512 == 0, length > 0 else { return nil }
        var plan = ReadPlan(length: length)
        do {
            var filesOnly = true
            try chain.mapRead(sector: offset / 512, count: length) { segment in
                switch segment {
                case let .zero(at, count): plan.zero(at, count)
                case let .data(store, offset, at, count):
                    guard let file = store as? FileStore else { filesOnly = false; return }
                    plan.add(file.descriptor.rawValue, offset, at, count)
                }
            }
            return filesOnly ? plan : nil
        } catch {
            return nil
        }
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
