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
        /// `count` bytes at `offset` of a store that reads from several threads at once (an
        /// NFS file), into the buffer at `at`.
        case store(PlannedStore, offset: UInt64, at: Int, count: Int)
        /// `count` zero bytes at `at`.
        case zero(at: Int, count: Int)
    }

    /// A store of the chain a plan reads from: valid while the chain is open, which it stays
    /// until every planned read has finished.
    struct PlannedStore: @unchecked Sendable {
        let store: any ConcurrentReadStore
    }

    /// Where a piece's bytes live: a file descriptor, or a store that takes several callers at once.
    enum Source: Sendable {
        /// A kernel descriptor, read with pread (or from the page cache).
        case file(Int32)
        /// A store read and written with its own calls, from I/O threads only (it may wait on the network).
        case store(PlannedStore)
    }

    /// The pieces, covering the request exactly once.
    var pieces: [Piece] = []
    /// Bytes of the request.
    let length: Int
    /// The read map's generation the descriptors belong to (plans made from the map).
    var generation: UInt64 = 0

    /// The one file range the whole request reads, if it is one.
    var singleFile: (fd: Int32, offset: UInt64)? {
        guard pieces.count == 1, case let .file(fd, offset, 0, count) = pieces[0], count == length else { return nil }
        return (fd, offset)
    }

    /// The plan of `length` bytes at `offset` (from the chain's own read mapping), or nil when a
    /// direct read is needed (unaligned requests, stores without a kernel descriptor).
    static func make(_ chain: VHDChain, offset: UInt64, length: Int) -> ReadPlan? {
        guard offset % 512 == 0, length % 512 == 0, length > 0 else { return nil }
        var plan = ReadPlan(length: length)
        do {
            var filesOnly = true
            try chain.mapRead(sector: offset / 512, count: length) { segment in
                switch segment {
                case let .zero(at, count): plan.zero(at, count)
                case let .data(store, offset, at, count):
                    if let file = store as? any DescriptorStore {
                        plan.add(file.descriptor.rawValue, offset, at, count)
                    } else if let concurrent = store as? any ConcurrentReadStore {
                        plan.add(concurrent, offset, at, count)
                    } else {
                        filesOnly = false
                    }
                }
            }
            return filesOnly ? plan : nil
        } catch {
            return nil
        }
    }

    /// Adds `count` bytes at `offset` of `source` into the buffer at `at`.
    mutating func add(_ source: Source, _ offset: UInt64, _ at: Int, _ count: Int) {
        switch source {
        case let .file(fd): add(fd, offset, at, count)
        case let .store(planned): add(planned.store, offset, at, count)
        }
    }

    /// Whether some piece is a store's (then the plan runs on an I/O thread, never on an event loop).
    var usesStores: Bool {
        pieces.contains { if case .store = $0 { return true } else { return false } }
    }

    /// Whether the plan runs without a waiting thread: some piece is a store that starts its
    /// requests asynchronously now (`AsyncBlockStore.startsAsynchronously`), every other one zeros.
    var runsAsync: Bool {
        var some = false
        for piece in pieces {
            switch piece {
            case .file: return false
            case let .store(planned, _, _, _):
                guard (planned.store as? any AsyncBlockStore)?.startsAsynchronously == true else { return false }
                some = true
            case .zero: break
            }
        }
        return some
    }

    /// Reads every piece into `buffer` (`length` bytes) without waiting (a plan that `runsAsync`):
    /// zeros at once, the stores' reads started; `completion` once all of them ended.
    func executeAsync(into buffer: TransferredBuffer, completion: @escaping @Sendable (Error?) -> Void) {
        let parts = pieces.filter { if case .store = $0 { return true } else { return false } }.count
        let countdown = PartCountdown(parts: parts, completion: completion)
        for piece in pieces {
            switch piece {
            case let .zero(at, count):
                UnsafeMutableRawBufferPointer(rebasing: buffer.bytes[at..<at + count]).initializeMemory(as: UInt8.self, repeating: 0)
            case let .store(planned, offset, at, count):
                (planned.store as! any AsyncBlockStore).startRead(into: UnsafeMutableRawBufferPointer(rebasing: buffer.bytes[at..<at + count]),
                                                                   at: offset, completion: countdown.end)
            case .file:
                preconditionFailure("a file piece in an asynchronous plan")
            }
        }
    }

    /// Writes `buffer` (`length` bytes) to the pieces without waiting (a plan from
    /// `ReadMap.writeTarget` that `runsAsync`); `completion` once every write ended.
    func writeAsync(from buffer: TransferredBuffer, completion: @escaping @Sendable (Error?) -> Void) {
        let countdown = PartCountdown(parts: pieces.count, completion: completion)
        for piece in pieces {
            guard case let .store(planned, offset, at, count) = piece else { preconditionFailure("a file or zero piece in an asynchronous write") }
            (planned.store as! any AsyncBlockStore).startWrite(UnsafeRawBufferPointer(rebasing: buffer.bytes[at..<at + count]),
                                                                at: offset, completion: countdown.end)
        }
    }

    mutating func add(_ fd: Int32, _ offset: UInt64, _ at: Int, _ count: Int) {
        if case let .file(lfd, loff, lat, lcount)? = pieces.last, lfd == fd, loff + UInt64(lcount) == offset, lat + lcount == at {
            pieces[pieces.count - 1] = .file(fd: fd, offset: loff, at: lat, count: lcount + count)
        } else {
            pieces.append(.file(fd: fd, offset: offset, at: at, count: count))
        }
    }

    mutating func add(_ store: any ConcurrentReadStore, _ offset: UInt64, _ at: Int, _ count: Int) {
        if case let .store(last, loff, lat, lcount)? = pieces.last, last.store === store, loff + UInt64(lcount) == offset, lat + lcount == at {
            pieces[pieces.count - 1] = .store(last, offset: loff, at: lat, count: lcount + count)
        } else {
            pieces.append(.store(PlannedStore(store: store), offset: offset, at: at, count: count))
        }
    }

    mutating func zero(_ at: Int, _ count: Int) {
        if case let .zero(lat, lcount)? = pieces.last, lat + lcount == at {
            pieces[pieces.count - 1] = .zero(at: lat, count: lcount + count)
        } else {
            pieces.append(.zero(at: at, count: count))
        }
    }

    /// glibc's preadv2, looked up at run time (Glibc's module map does not show it).
    private typealias PReadV2 = @convention(c) (Int32, UnsafePointer<iovec>?, Int32, off_t, Int32) -> Int
    private static let preadv2: PReadV2? = dlsym(nil, "preadv2").map { unsafeBitCast($0, to: PReadV2.self) }
    /// RWF_NOWAIT: fail with EAGAIN instead of waiting for the disk.
    private static let nowait: Int32 = 8

    /// Reads every piece into `buffer` (`length` bytes) from the page cache only; false as
    /// soon as some of it would have to wait for the disk (the buffer then holds part of it).
    func executeCached(into buffer: UnsafeMutableRawBufferPointer) -> Bool {
        guard let preadv2 = Self.preadv2 else { return false }
        return (try? fill(buffer) { fd, at, count, offset in
            var v = iovec(iov_base: at, iov_len: count)
            while true {
                let n = preadv2(fd, &v, 1, offset, Self.nowait)
                if n < 0 && errno == EINTR { continue }
                return n > 0 ? n : nil
            }
        }) ?? false
    }

    /// cachestat(2) (Linux 6.5), through syscall(2) since glibc has no wrapper here.
    private typealias Syscall4 = @convention(c) (Int, Int32, UnsafeRawPointer, UnsafeMutableRawPointer, UInt32) -> Int
    private static let syscall4: Syscall4? = dlsym(nil, "syscall").map { unsafeBitCast($0, to: Syscall4.self) }
    private static let cachestatNumber = 451
    private static let pageSize = UInt64(max(4096, sysconf(Int32(_SC_PAGESIZE))))

    /// Whether every page of `count` bytes at `offset` of `fd` is in the page cache (false when
    /// unknown), so that sending them from the event loop will not wait for the disk.
    static func isCached(fd: Int32, offset: UInt64, count: Int) -> Bool {
        #if arch(x86_64) || arch(arm64)
        guard let call = syscall4, count > 0 else { return false }
        var range: (UInt64, UInt64) = (offset, UInt64(count))
        var stat: (UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0)
        let r = withUnsafePointer(to: &range) { rp in
            withUnsafeMutablePointer(to: &stat) { sp in call(cachestatNumber, fd, rp, sp, 0) }
        }
        let pages = (offset + UInt64(count) - 1) / pageSize - offset / pageSize + 1
        return r == 0 && stat.0 >= pages
        #else
        return false
        #endif
    }

    /// Reads every piece into `buffer` (`length` bytes); throws `VHDError.io` or `.shortRead`.
    func execute(into buffer: UnsafeMutableRawBufferPointer) throws {
        _ = try fill(buffer, stores: true) { fd, at, count, offset in
            while true {
                let n = pread(fd, at, count, offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw VHDError.io(path: "fd \(fd)", operation: "read", errno: errno)
                }
                if n == 0 { throw VHDError.shortRead(path: "fd \(fd)", offset: UInt64(offset), count: count) }
                return n
            }
        }
    }

    /// Writes `buffer` (`length` bytes) to the pieces (a plan from `ReadMap.writeTarget`, which
    /// has no zero pieces): file pieces with pwrite, store pieces with the store's `write` (an
    /// I/O thread's job); throws `VHDError.io`.
    func write(from buffer: UnsafeRawBufferPointer) throws {
        precondition(buffer.count == length)
        for piece in pieces {
            if case let .store(planned, offset, at, count) = piece {
                guard let store = planned.store as? any ConcurrentWriteStore else {
                    throw VHDError.io(path: "store", operation: "write", errno: EBADF)
                }
                try store.write(UnsafeRawBufferPointer(rebasing: buffer[at..<at + count]), at: offset)
                continue
            }
            guard case let .file(fd, offset, at, count) = piece else { preconditionFailure("zero piece in a write plan") }
            var done = 0
            while done < count {
                let n = pwrite(fd, buffer.baseAddress! + at + done, count - done, off_t(offset) + off_t(done))
                if n < 0 {
                    if errno == EINTR { continue }
                    throw VHDError.io(path: "fd \(fd)", operation: "write", errno: errno)
                }
                done += n
            }
        }
    }

    /// Zeroes the zero pieces and reads the file pieces with `read(fd, destination, count,
    /// offset)`, which returns the bytes it read or nil to stop; whether everything was read.
    /// Store pieces are read with the store's own `read` when `stores` is true; else the
    /// fill stops there (false: not all from the page cache).
    private func fill(_ buffer: UnsafeMutableRawBufferPointer, stores: Bool = false,
                      _ read: (Int32, UnsafeMutableRawPointer, Int, off_t) throws -> Int?) throws -> Bool {
        for piece in pieces {
            switch piece {
            case let .zero(at, count):
                UnsafeMutableRawBufferPointer(rebasing: buffer[at..<at + count]).initializeMemory(as: UInt8.self, repeating: 0)
            case let .store(planned, offset, at, count):
                guard stores else { return false }
                try planned.store.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[at..<at + count]), at: offset)
            case let .file(fd, offset, at, count):
                var done = 0
                while done < count {
                    guard let n = try read(fd, buffer.baseAddress! + at + done, count - done, off_t(offset) + off_t(done)) else { return false }
                    done += n
                }
            }
        }
        return true
    }
}
