import Foundation
import XenAPIWire

/// toolstackd's database: every object in memory (as xapi keeps its own), each committed
/// transaction written through to an `ObjectStore` first, and an event stream for `event.from`.
public final class ObjectDatabase: @unchecked Sendable {
    /// Where objects persist.
    public let store: any ObjectStore
    private let condition = NSCondition()
    private var snapshot = DatabaseSnapshot(objects: [:])
    private var events: [DatabaseEvent] = []
    private var lastEventID: Int64 = 0
    private let keptEvents = 20_000

    /// Loads every object of `store`; when other daemons share it, their changes are applied as
    /// they are announced (and at least every second), becoming events like local ones.
    public init(store: any ObjectStore) throws {
        self.store = store
        for r in try store.loadAll() { snapshot.objects[r.cls, default: [:]][r.ref] = r }
        let wake = DispatchSemaphore(value: 0)
        store.onRemoteChange { wake.signal() }
        Thread { [weak self] in
            while true {
                _ = wake.wait(timeout: .now() + 1)
                guard let self else { return }
                self.syncRemoteChanges()
            }
        }.start()
    }

    /// Told of the changes other daemons made, after they are applied.
    private var remoteObserver: (@Sendable ([StoreChange]) -> Void)?

    /// Sets what is told of the changes other daemons make (a host acting on requests made
    /// through another, such as a cancel of one of its tasks).
    public func observeRemoteChanges(_ observer: @escaping @Sendable ([StoreChange]) -> Void) {
        condition.lock()
        defer { condition.unlock() }
        remoteObserver = observer
    }

    /// Applies what other daemons committed since the last look.
    public func syncRemoteChanges() {
        condition.lock()
        guard let changes = try? store.pullChanges(), !changes.isEmpty else {
            condition.unlock()
            return
        }
        apply(changes)
        condition.broadcast()
        let observer = remoteObserver
        condition.unlock()
        observer?(changes)
    }

    /// Applies other daemons' changes to the snapshot, publishing those that differ.
    private func apply(_ changes: [StoreChange]) {
        let now = XenAPITime.string()
        for change in changes {
            let old = snapshot.objects[change.cls]?[change.ref]
            if let r = change.record {
                guard old != r else { continue }
                snapshot.objects[change.cls, default: [:]][change.ref] = r
                publish(change.cls, change.ref, old == nil ? "add" : "mod", r, now)
            } else if let old {
                snapshot.objects[change.cls]?[change.ref] = nil
                publish(change.cls, change.ref, "del", old, now)
            }
        }
    }

    /// Reads a consistent view.
    public func read<T>(_ body: (DatabaseSnapshot) throws -> T) rethrows -> T {
        condition.lock()
        let view = snapshot
        condition.unlock()
        return try body(view)
    }

    /// Runs `body` as one transaction: all its changes are stored and published, or none.
    public func write<T>(_ body: (inout DatabaseTransaction) throws -> T) throws -> T {
        condition.lock()
        defer { condition.unlock() }
        // A shared store: the pool-wide write lock, and the others' changes first.
        let remote = try store.beginWrite()
        if !remote.isEmpty {
            apply(remote)
            condition.broadcast()
        }
        var txn = DatabaseTransaction(base: snapshot)
        let result: T
        do { result = try body(&txn) } catch {
            store.abortWrite()
            throw error
        }
        guard !txn.changes.isEmpty else {
            store.abortWrite()
            return result
        }
        let upserts = txn.changes.values.compactMap(\.record)
        let deletions = txn.changes.filter { $0.value.record == nil }.map(\.key)
        try store.commit(upserts: upserts, deletions: deletions)
        let now = XenAPITime.string()
        for (ref, change) in txn.changes.sorted(by: { $0.key < $1.key }) {
            let old = snapshot.objects[change.cls]?[ref]
            if let r = change.record {
                snapshot.objects[change.cls, default: [:]][ref] = r
                if old != r { publish(change.cls, ref, old == nil ? "add" : "mod", r, now) }
            } else if let old {
                snapshot.objects[change.cls]?[ref] = nil
                publish(change.cls, ref, "del", old, now)
            }
        }
        condition.broadcast()
        return result
    }

    private func publish(_ cls: String, _ ref: String, _ op: String, _ r: ObjectRecord, _ time: String) {
        lastEventID += 1
        events.append(DatabaseEvent(id: lastEventID, cls: cls, ref: ref, operation: op, snapshot: r, timestamp: time))
        if events.count > keptEvents { events.removeFirst(events.count - keptEvents) }
    }

    /// The id of the newest event.
    public var currentToken: Int64 {
        condition.lock()
        defer { condition.unlock() }
        return lastEventID
    }

    /// Events after `token` in `classes` (all when it holds `*`), waiting until `deadline` for one;
    /// nil when `token` is older than the events still kept.
    public func events(after token: Int64, classes: Set<String>, until deadline: Date) -> (events: [DatabaseEvent], token: Int64)? {
        condition.lock()
        defer { condition.unlock() }
        while true {
            if let first = events.first, token < first.id - 1 { return nil }
            let matching = events.filter { $0.id > token && (classes.contains("*") || classes.contains($0.cls.lowercased())) }
            if !matching.isEmpty || Date() >= deadline { return (matching, lastEventID) }
            _ = condition.wait(until: deadline)
        }
    }
}
