import Foundation
import Logging
import NIOCore
import NIOPosix
import PostgresNIO
import Toolstack

/// The store for a pool whose hosts share one database: PostgreSQL through postgres-nio, the same
/// schema and migrations as the embedded SQLite store. Calls block (the object database calls its
/// store synchronously, from the thread of the API call) on postgres-nio's futures, which run on
/// NIO's event loops: nothing waits on Swift concurrency's small cooperative pool.
public final class PostgresObjectStore: ObjectStore, @unchecked Sendable {
    /// Why the store failed.
    public struct Failure: Error, CustomStringConvertible {
        /// What went wrong.
        public var description: String
    }

    private let configuration: PostgresConnection.Configuration
    private let logger: Logger
    private let lock = NSLock()
    private var connection: PostgresConnection?
    /// The newest change-log entry this daemon has applied.
    private var lastSeen: Int64 = 0
    /// Whether a write (`beginWrite`) holds the pool-wide lock in an open transaction.
    private var inWrite = false
    /// The connection that LISTENs for other daemons' commits.
    private var listener: PostgresConnection?
    /// The channel commits are announced on.
    static let channel = "swiftsm_objects"
    /// The advisory lock that serialises writes pool-wide (so change-log ids follow commit order).
    static let writeLock: Int64 = 0x5357_4946_5453_4d01
    /// Where the database is, for logs (`postgres://user@host:port/db`, without a password).
    public let description: String
    /// The hosts of a pool share it.
    public var isShared: Bool { true }

    /// The migrations, in order: name and statements.
    static let migrations: [(String, [String])] = [
        ("v1-objects", [
            "CREATE TABLE objects (ref TEXT PRIMARY KEY, class TEXT NOT NULL, uuid TEXT NOT NULL, record TEXT NOT NULL)",
            "CREATE INDEX objects_class ON objects (class)",
            "CREATE UNIQUE INDEX objects_class_uuid ON objects (class, uuid)",
        ]),
        // Every committed change, in commit order: how the daemons sharing the database learn
        // of each other's writes (announced with NOTIFY, read from here).
        ("v2-object-log", [
            "CREATE TABLE object_log (id BIGSERIAL PRIMARY KEY, ref TEXT NOT NULL, class TEXT NOT NULL)",
        ]),
    ]

    /// Connects to `url` (`postgres://user[:password]@host[:port]/database`) and applies the migrations.
    public init(url: String) throws {
        guard let u = URLComponents(string: url), ["postgres", "postgresql"].contains(u.scheme ?? ""),
              let host = u.host, let user = u.user else {
            throw Failure(description: "invalid PostgreSQL URL (postgres://user[:password]@host[:port]/database)")
        }
        let database = u.path.hasPrefix("/") ? String(u.path.dropFirst()) : u.path
        configuration = PostgresConnection.Configuration(host: host, port: u.port ?? 5432, username: user,
                                                         password: u.password, database: database.isEmpty ? nil : database,
                                                         tls: .disable)
        description = "postgres://\(user)@\(host):\(u.port ?? 5432)/\(database)"
        var log = Logger(label: "toolstackd.postgres")
        log.logLevel = .warning
        logger = log
        try migrate()
    }

    /// The migrations applied to the database, in order.
    public func appliedMigrations() throws -> [String] {
        try run { c, log in
            try c.query("SELECT name FROM schema_migrations ORDER BY applied, name", logger: log).wait().rows.map { try $0.decode(String.self) }
        }
    }

    private func migrate() throws {
        try run { c, log in
            _ = try c.query("CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied TIMESTAMPTZ NOT NULL DEFAULT now())", logger: log).wait()
            let applied = Set(try c.query("SELECT name FROM schema_migrations", logger: log).wait().rows.map { try $0.decode(String.self) })
            for (name, statements) in Self.migrations where !applied.contains(name) {
                _ = try c.query("BEGIN", logger: log).wait()
                do {
                    for sql in statements { _ = try c.query(PostgresQuery(unsafeSQL: sql), logger: log).wait() }
                    _ = try c.query("INSERT INTO schema_migrations (name) VALUES (\(name))", logger: log).wait()
                    _ = try c.query("COMMIT", logger: log).wait()
                } catch {
                    _ = try? c.query("ROLLBACK", logger: log).wait()
                    throw error
                }
            }
        }
    }

    /// Every stored object (and the change log's position, for later pulls).
    public func loadAll() throws -> [ObjectRecord] {
        try run { c, log in
            lastSeen = try c.query("SELECT COALESCE(MAX(id), 0)::BIGINT FROM object_log", logger: log).wait().rows.first?.decode(Int64.self) ?? 0
            return try c.query("SELECT ref, class, record FROM objects", logger: log).wait().rows.compactMap { row in
                let (ref, cls, record) = try row.decode((String, String, String).self)
                return ObjectRecord.fromJSON(cls: cls, ref: ref, text: record)
            }
        }
    }

    /// Takes the pool-wide write lock in a new transaction; what others committed since the last look.
    public func beginWrite() throws -> [StoreChange] {
        try run { c, log in
            _ = try c.query("BEGIN", logger: log).wait()
            do {
                _ = try c.query("SELECT pg_advisory_xact_lock(\(Self.writeLock))", logger: log).wait()
                inWrite = true
                return try pull(c, log)
            } catch {
                _ = try? c.query("ROLLBACK", logger: log).wait()
                throw error
            }
        }
    }

    /// Ends a write that commits nothing (releasing the lock).
    public func abortWrite() {
        _ = try? run { c, log in
            guard inWrite else { return }
            inWrite = false
            _ = try c.query("ROLLBACK", logger: log).wait()
        }
    }

    /// What others committed since the last look.
    public func pullChanges() throws -> [StoreChange] {
        try run { c, log in try pull(c, log) }
    }

    /// The change log after `lastSeen`, each object once with its current record.
    private func pull(_ c: PostgresConnection, _ log: Logger) throws -> [StoreChange] {
        let rows = try c.query("""
            SELECT l.id, l.ref, l.class, o.record FROM object_log l LEFT JOIN objects o ON o.ref = l.ref
            WHERE l.id > \(lastSeen) ORDER BY l.id
            """, logger: log).wait().rows
        var order: [String] = []
        var latest: [String: StoreChange] = [:]
        for row in rows {
            let (id, ref, cls, record) = try row.decode((Int64, String, String, String?).self)
            lastSeen = max(lastSeen, id)
            if latest[ref] == nil { order.append(ref) }
            latest[ref] = StoreChange(cls: cls, ref: ref, record: record.flatMap { ObjectRecord.fromJSON(cls: cls, ref: ref, text: $0) })
        }
        return order.compactMap { latest[$0] }
    }

    /// Writes `upserts` and removes `deletions` in one PostgreSQL transaction (the one `beginWrite`
    /// opened, or a new one under the same lock), logs them and announces the commit.
    public func commit(upserts: [ObjectRecord], deletions: [String]) throws {
        let rows = upserts.compactMap { r -> (String, String, String, String)? in
            guard let spec = DataModel.classes[r.cls] else { return nil }
            return (r.ref, r.cls, r.uuid, r.jsonText(spec: spec))
        }
        try run { c, log in
            let writing = inWrite
            inWrite = false
            if !writing {
                _ = try c.query("BEGIN", logger: log).wait()
            }
            do {
                if !writing { _ = try c.query("SELECT pg_advisory_xact_lock(\(Self.writeLock))", logger: log).wait() }
                // One statement each for the deletions, the upserts and their log entries,
                // whatever the number of objects.
                var logRefs: [String] = [], logClasses: [String] = []
                if !deletions.isEmpty {
                    for row in try c.query("DELETE FROM objects WHERE ref = ANY(\(deletions)) RETURNING ref, class", logger: log).wait().rows {
                        let (ref, cls) = try row.decode((String, String).self)
                        logRefs.append(ref)
                        logClasses.append(cls)
                    }
                }
                if !rows.isEmpty {
                    let refs = rows.map(\.0), classes = rows.map(\.1), uuids = rows.map(\.2), records = rows.map(\.3)
                    _ = try c.query("""
                        INSERT INTO objects (ref, class, uuid, record)
                        SELECT * FROM unnest(\(refs)::text[], \(classes)::text[], \(uuids)::text[], \(records)::text[])
                        ON CONFLICT (ref) DO UPDATE SET uuid = EXCLUDED.uuid, record = EXCLUDED.record
                        """, logger: log).wait()
                    logRefs += refs
                    logClasses += classes
                }
                var newest: Int64 = 0
                if !logRefs.isEmpty {
                    for row in try c.query("""
                        INSERT INTO object_log (ref, class) SELECT * FROM unnest(\(logRefs)::text[], \(logClasses)::text[]) RETURNING id
                        """, logger: log).wait().rows {
                        newest = max(newest, try row.decode(Int64.self))
                    }
                }
                _ = try c.query(PostgresQuery(unsafeSQL: "NOTIFY \(Self.channel)"), logger: log).wait()
                _ = try c.query("COMMIT", logger: log).wait()
                // Under the lock since beginWrite pulled: nothing of others' lies between.
                if writing, newest > lastSeen { lastSeen = newest }
            } catch {
                _ = try? c.query("ROLLBACK", logger: log).wait()
                throw error
            }
        }
    }

    /// Calls `notify` whenever a commit is announced (a LISTEN on its own connection).
    public func onRemoteChange(_ notify: @escaping @Sendable () -> Void) {
        lock.lock()
        defer { lock.unlock() }
        guard listener == nil else { return }
        do {
            let c = try PostgresConnection.connect(on: MultiThreadedEventLoopGroup.singleton.next(), configuration: configuration,
                                                   id: 2, logger: logger).wait()
            c.addListener(channel: Self.channel) { _, _ in notify() }
            _ = try c.query(PostgresQuery(unsafeSQL: "LISTEN \(Self.channel)"), logger: logger).wait()
            listener = c
        } catch {
            logger.warning("LISTEN \(Self.channel) failed (changes are still pulled every second): \(String(reflecting: error))")
        }
    }

    deinit { close() }

    /// Closes the connection.
    public func close() {
        lock.lock()
        defer { lock.unlock() }
        if let c = connection { try? c.close().wait() }
        connection = nil
        if let l = listener { try? l.close().wait() }
        listener = nil
    }

    /// Runs `body` on the connection (made, or made again after a failure), one caller at a time.
    private func run<T>(_ body: (PostgresConnection, Logger) throws -> T) throws -> T {
        lock.lock()
        defer { lock.unlock() }
        if connection == nil || connection?.isClosed == true {
            do {
                connection = try PostgresConnection.connect(on: MultiThreadedEventLoopGroup.singleton.next(), configuration: configuration,
                                                            id: 1, logger: logger).wait()
            } catch {
                throw Failure(description: "cannot connect to \(description): \(String(reflecting: error))")
            }
        }
        let c = connection!
        do {
            return try body(c, logger)
        } catch {
            if c.isClosed { connection = nil }
            throw Failure(description: String(reflecting: error))
        }
    }
}
