import Foundation
import GRDB

/// The embedded store: one SQLite file (WAL) through GRDB, with schema migrations.
public final class SQLiteObjectStore: ObjectStore, @unchecked Sendable {
    private let queue: DatabaseQueue
    /// The database file.
    public let path: String

    /// Opens (creating and migrating as needed) the database at `path`.
    public init(path: String) throws {
        self.path = path
        var config = Configuration()
        config.busyMode = .timeout(10)
        queue = try DatabaseQueue(path: path, configuration: config)
        // WAL with synchronous=NORMAL: a commit survives the process being killed at any point (the
        // crash the issue asks for); only a power loss can lose the last commits, as with xapi's
        // periodic flush, and every API call does not pay an fsync.
        try queue.writeWithoutTransaction { db in
            try db.execute(sql: "PRAGMA journal_mode=WAL")
            try db.execute(sql: "PRAGMA synchronous=NORMAL")
        }
        try Self.migrator.migrate(queue)
    }

    /// The schema's migrations, in order.
    static var migrator: DatabaseMigrator {
        var m = DatabaseMigrator()
        m.registerMigration("v1-objects") { db in
            try db.create(table: "objects") { t in
                t.primaryKey("ref", .text)
                t.column("class", .text).notNull().indexed()
                t.column("uuid", .text).notNull()
                t.column("record", .text).notNull()
            }
            try db.create(index: "objects_class_uuid", on: "objects", columns: ["class", "uuid"], unique: true)
        }
        return m
    }

    /// The migrations applied to the file, in order.
    public func appliedMigrations() throws -> [String] {
        try queue.read { db in try Self.migrator.appliedMigrations(db) }
    }

    /// Every stored object.
    public func loadAll() throws -> [ObjectRecord] {
        try queue.read { db in
            try Row.fetchAll(db, sql: "SELECT ref, class, record FROM objects").compactMap { row in
                ObjectRecord.fromJSON(cls: row["class"], ref: row["ref"], text: row["record"])
            }
        }
    }

    /// Writes `upserts` and removes `deletions` in one SQLite transaction.
    public func commit(upserts: [ObjectRecord], deletions: [String]) throws {
        try queue.write { db in
            for ref in deletions { try db.execute(sql: "DELETE FROM objects WHERE ref = ?", arguments: [ref]) }
            for r in upserts {
                guard let spec = DataModel.classes[r.cls] else { continue }
                try db.execute(sql: """
                    INSERT INTO objects(ref, class, uuid, record) VALUES (?, ?, ?, ?)
                    ON CONFLICT(ref) DO UPDATE SET uuid = excluded.uuid, record = excluded.record
                    """, arguments: [r.ref, r.cls, r.uuid, r.jsonText(spec: spec)])
            }
        }
    }

    /// `sqlite:<path>`, for logs.
    public var description: String { "sqlite:\(path)" }
}
