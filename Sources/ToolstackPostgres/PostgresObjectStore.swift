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
    /// Where the database is, for logs (`postgres://user@host:port/db`, without a password).
    public let description: String

    /// The migrations, in order: name and statements.
    static let migrations: [(String, [String])] = [
        ("v1-objects", [
            "CREATE TABLE objects (ref TEXT PRIMARY KEY, class TEXT NOT NULL, uuid TEXT NOT NULL, record TEXT NOT NULL)",
            "CREATE INDEX objects_class ON objects (class)",
            "CREATE UNIQUE INDEX objects_class_uuid ON objects (class, uuid)",
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

    /// Every stored object.
    public func loadAll() throws -> [ObjectRecord] {
        try run { c, log in
            try c.query("SELECT ref, class, record FROM objects", logger: log).wait().rows.compactMap { row in
                let (ref, cls, record) = try row.decode((String, String, String).self)
                return ObjectRecord.fromJSON(cls: cls, ref: ref, text: record)
            }
        }
    }

    /// Writes `upserts` and removes `deletions` in one PostgreSQL transaction.
    public func commit(upserts: [ObjectRecord], deletions: [String]) throws {
        let rows = upserts.compactMap { r -> (String, String, String, String)? in
            guard let spec = DataModel.classes[r.cls] else { return nil }
            return (r.ref, r.cls, r.uuid, r.jsonText(spec: spec))
        }
        try run { c, log in
            _ = try c.query("BEGIN", logger: log).wait()
            do {
                for ref in deletions { _ = try c.query("DELETE FROM objects WHERE ref = \(ref)", logger: log).wait() }
                for (ref, cls, uuid, record) in rows {
                    _ = try c.query("""
                        INSERT INTO objects (ref, class, uuid, record) VALUES (\(ref), \(cls), \(uuid), \(record))
                        ON CONFLICT (ref) DO UPDATE SET uuid = EXCLUDED.uuid, record = EXCLUDED.record
                        """, logger: log).wait()
                }
                _ = try c.query("COMMIT", logger: log).wait()
            } catch {
                _ = try? c.query("ROLLBACK", logger: log).wait()
                throw error
            }
        }
    }

    deinit { close() }

    /// Closes the connection.
    public func close() {
        lock.lock()
        defer { lock.unlock() }
        if let c = connection { try? c.close().wait() }
        connection = nil
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
