import Foundation
import NFSDriver
import Testing
import VHD
import RemoteStorage

/// `NFSStore` against NFS-Ganesha: UNSTABLE writes from several threads at once, and what a
/// COMMIT does when the server restarted since the writes (its write verifier changed).
@Suite(.serialized) struct NFSStoreTests {
    /// `count` bytes of a pattern particular to `seed`.
    static func pattern(_ seed: Int, count: Int) -> [UInt8] {
        var x = UInt64(seed) &* 0x9E37_79B9_7F4A_7C15 | 1
        return (0..<count).map { _ in x ^= x << 13; x ^= x >> 7; x ^= x << 17; return UInt8(truncatingIfNeeded: x) }
    }

    /// A store on a new empty file `name` of `server`'s export.
    static func store(_ server: NFSTestServer, _ name: String, hold: HoldPolicy = .hold(seconds: 60)) throws -> NFSStore {
        #expect(FileManager.default.createFile(atPath: server.export + "/" + name, contents: nil))
        let target = NFSTarget(server: server.host, export: server.export, nfsPort: server.port, mountPort: server.mountPort,
                               timeoutSeconds: 2, retrans: 1, hold: hold)
        return try NFSStore(mount: NFSMount(target: target), path: "/" + name, writable: true)
    }

    /// Sixteen threads write 256 KiB each at their own offsets (the mount opens a pool of
    /// connections for them); one COMMIT covers them all and sends nothing again (the server
    /// did not restart), and the file holds every byte.
    @Test func concurrentWritersNeedOneCommitAndNoResend() throws {
        let server = try NFSTestServer.require()
        let name = "store-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: server.export + "/" + name) }
        let store = try Self.store(server, name)
        let chunk = 256 << 10
        let failures = ThreadErrors()
        DispatchQueue.concurrentPerform(iterations: 16) { i in
            do {
                try Self.pattern(i, count: chunk).withUnsafeBytes { try store.write($0, at: UInt64(i * chunk)) }
            } catch { failures.add("\(error)") }
        }
        #expect(failures.all.isEmpty, "\(failures.all)")
        try store.sync()
        #expect(store.writesSentAgain == 0)
        let file = try Data(contentsOf: URL(fileURLWithPath: server.export + "/" + name))
        #expect(file.count == 16 * chunk)
        for i in 0..<16 { #expect([UInt8](file[i * chunk..<(i + 1) * chunk]) == Self.pattern(i, count: chunk), "chunk \(i)") }
    }

    /// Writes the server acknowledged, then a restart before the COMMIT: the COMMIT's verifier
    /// differs from the last one, so the store sends its uncommitted writes again (the ones a
    /// COMMIT covered before the restart are not), and the file holds both.
    @Test func aServerRestartBeforeTheCommitResendsTheUncommittedWrites() throws {
        let root = "/tmp/nst-" + UUID().uuidString.prefix(8).lowercased()
        try FileManager.default.createDirectory(atPath: root + "/export", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let server = try NFSTestServer.startPrivate(root: root)
        defer { try? server.stop() }
        let store = try Self.store(server, "f")
        let a = Self.pattern(1, count: 1 << 20), b = Self.pattern(2, count: 1 << 20)
        try a.withUnsafeBytes { try store.write($0, at: 0) }
        try store.sync()
        #expect(store.writesSentAgain == 0)
        try b.withUnsafeBytes { try store.write($0, at: 1 << 20) }
        try b.withUnsafeBytes { try store.write($0, at: 3 << 20) }
        try server.stop()
        // NFS-Ganesha's verifier is its start time in seconds: a restart within the same
        // second would look like no restart (its FSAL VFS keeps acknowledged writes in the
        // page cache, so nothing is lost there; a server that loses them changes its verifier).
        Thread.sleep(forTimeInterval: 1.1)
        try server.start()
        try store.sync()
        #expect(store.writesSentAgain == 2, "the two writes after the last COMMIT, sent again")
        let file = try Data(contentsOf: URL(fileURLWithPath: server.export + "/f"))
        #expect(file.count == 4 << 20)
        #expect([UInt8](file[0..<(1 << 20)]) == a)
        #expect([UInt8](file[(1 << 20)..<(2 << 20)]) == b && [UInt8](file[(3 << 20)..<(4 << 20)]) == b)
        try store.sync()
        #expect(store.writesSentAgain == 2, "committed: nothing left to send")
    }
}

/// Errors collected from several threads.
final class ThreadErrors: @unchecked Sendable {
    private let lock = NSLock()
    private var list: [String] = []
    /// Adds one.
    func add(_ s: String) { lock.withLock { list.append(s) } }
    /// Every one so far.
    var all: [String] { lock.withLock { list } }
}
