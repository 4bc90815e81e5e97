import NIOCore
#if canImport(Glibc)
import Glibc
#endif

/// The descriptors one connection sends file regions from (sendfile, no copy through user
/// space): a duplicate of each chain file it sends from, made while the read map's plan holds the
/// chain's own descriptor open, and closed once no region of it is queued and the chain it came
/// from is gone. Pause and unpause can then close and reopen the chain at any time. Event loop only.
final class RegionFiles {
    /// One duplicated descriptor and the regions of it still queued on the socket.
    final class Entry {
        /// The duplicate the regions name.
        let handle: NIOFileHandle
        /// Regions written and not yet sent (or failed).
        var queued = 0
        /// Whether the chain that owned the original was reopened (or the connection ended).
        var retired = false

        init(handle: NIOFileHandle) { self.handle = handle }

        func closeIfDone() {
            if retired && queued == 0 && handle.isOpen { try? handle.close() }
        }
    }

    private var generation: UInt64 = 0
    private var entries: [Int32: Entry] = [:]

    /// The entry for chain descriptor `fd` of the read map's `generation`, duplicating it on
    /// first use; nil when it cannot be duplicated.
    func entry(for fd: Int32, generation: UInt64) -> Entry? {
        if generation != self.generation {
            retireAll()
            self.generation = generation
        }
        if let e = entries[fd] { return e }
        let copy = fcntl(fd, F_DUPFD_CLOEXEC, 0)
        guard copy >= 0 else { return nil }
        let e = Entry(handle: NIOFileHandle(_deprecatedTakingOwnershipOfDescriptor: copy))
        entries[fd] = e
        return e
    }

    /// A region of `e` was queued.
    func queued(_ e: Entry) { e.queued += 1 }

    /// A region of `e` left (or failed).
    func sent(_ e: Entry) {
        e.queued -= 1
        e.closeIfDone()
    }

    /// Closes every descriptor once its regions are gone (connection closed, chain reopened).
    func retireAll() {
        for e in entries.values {
            e.retired = true
            e.closeIfDone()
        }
        entries.removeAll()
    }
}
