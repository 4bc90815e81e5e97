/// Crash recovery of the collector's journals, run with the SR lock held by the next collector
/// and, when no collector runs, by SR attach, scan and every VDI command.
extension GarbageCollector {
    /// Finishes or rolls back every collector journal; returns the names handled.
    @discardableResult
    public func recoverJournals() throws -> [String] {
        let entries = try container.journals().filter { GCJournal.owns($0.key) }
        var handled: [String] = []
        for (name, bytes) in entries.sorted(by: { $0.key < $1.key }) {
            if let python = PythonGCJournal(name: name, value: bytes) {
                try settle(python, named: name)
                log.notice("GC: settled the Python SM's \(name)")
                handled.append(name)
                continue
            }
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

    /// Settles what the Python SM's collector left, as its own next run would: an interrupted
    /// merge changed nothing visible (the node still shadows every sector it wrote into the
    /// parent), so only the entry goes; an interrupted relink is finished (every child of the
    /// node relinked to the node's parent, the node removed); an interrupted leaf coalesce is
    /// rolled back before the leaf was renamed away and finished after (its `OLD_` name first
    /// given the name this collector's own recovery looks for). The entry goes last.
    func settle(_ journal: PythonGCJournal, named name: String) throws {
        switch journal.kind {
        case .coalesce:
            break
        case .relink:
            if container.exists(repo.volume(journal.vdi)) {
                guard let parent = try repo.state(journal.vdi).parent else {
                    throw RepositoryError.corruptVolume(repo.volume(journal.vdi), "the Python SM's relink journal names a node without a parent")
                }
                try relink(journal.vdi, into: parent)
            }
        case .leaf:
            let parent = journal.parent!
            let theirs = repo.volume("OLD_" + journal.vdi), ours = oldVolume(journal.vdi)
            if theirs != ours && container.exists(theirs) {
                try container.rename(theirs, to: ours)
                try container.sync()
            }
            try recoverLeafCoalesce(journal.vdi, parent: parent)
        }
        if try container.journal(name) != nil { try container.removeJournal(name) }
    }
}
