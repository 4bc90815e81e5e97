/// Crash recovery of the collector's journals, run with the SR lock held by the next collector
/// and, when no collector runs, by SR attach, scan and every VDI command.
extension GarbageCollector {
    /// Finishes or rolls back every collector journal; returns the names handled.
    @discardableResult
    public func recoverJournals() throws -> [String] {
        let entries = try container.journals().filter { GCJournal.owns($0.key) }
        var handled: [String] = []
        for (name, bytes) in entries.sorted(by: { $0.key < $1.key }) {
            guard let journal = GCJournal(name: name, bytes: bytes) else {
                throw RepositoryError.corruptVolume("journal-" + name, "unreadable collector journal")
            }
            switch journal {
            case let .coalesce(node, parent):
                // An interrupted merge changed nothing visible; a pending relink takes over.
                if entries[GCJournal.relink(node: node, parent: parent).name] == nil { try container.removeJournal(name) }
            case let .relink(node, parent):
                try relink(node, into: parent)
            case let .leaf(vdi, parent):
                try recoverLeafCoalesce(vdi, parent: parent)
            }
            log.notice("GC: recovered \(name)")
            handled.append(name)
        }
        return handled
    }
}
