import Foundation
#if canImport(Glibc)
import Glibc
#endif

@_silgen_name("crypt")
private func system_crypt(_ key: UnsafePointer<CChar>, _ salt: UnsafePointer<CChar>) -> UnsafeMutablePointer<CChar>?

/// Password hashes in the form of `/etc/shadow` (`$6$salt$…`, SHA-512 crypt through libcrypt):
/// the daemon's configuration holds one for root, never the password itself.
public enum PasswordHash {
    private static let lock = NSLock()
    private static let saltAlphabet = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789./")

    /// A new SHA-512 crypt hash of `password` with a random salt.
    public static func make(_ password: String) -> String {
        var rng = SystemRandomNumberGenerator()
        let salt = String((0..<16).map { _ in saltAlphabet[Int(rng.next() % UInt64(saltAlphabet.count))] })
        return crypt(password, setting: "$6$" + salt + "$") ?? ""
    }

    /// Whether `password` matches `hash` (compared in constant time).
    public static func verify(_ password: String, hash: String) -> Bool {
        guard hash.hasPrefix("$"), let computed = crypt(password, setting: hash) else { return false }
        let a = Array(computed.utf8), b = Array(hash.utf8)
        guard a.count == b.count else { return false }
        var diff: UInt8 = 0
        for i in a.indices { diff |= a[i] ^ b[i] }
        return diff == 0
    }

    private static func crypt(_ password: String, setting: String) -> String? {
        lock.lock()
        defer { lock.unlock() }
        guard let out = system_crypt(password, setting), out.pointee != 0x2A /* "*" = failure */ else { return nil }
        return String(cString: out)
    }
}
