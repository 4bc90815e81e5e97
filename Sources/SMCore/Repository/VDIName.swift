import Foundation

/// VDI names on VHD SRs are uuids; anything else (path traversal, stray files) is refused.
public enum VDIName {
    /// Whether `s` is a canonical lower- or upper-case uuid (36 characters, hex and dashes).
    public static func isUUID(_ s: String) -> Bool {
        let u = Array(s.utf8)
        guard u.count == 36 else { return false }
        for (i, c) in u.enumerated() {
            if i == 8 || i == 13 || i == 18 || i == 23 { if c != UInt8(ascii: "-") { return false } } else {
                guard (c >= 48 && c <= 57) || (c >= 97 && c <= 102) || (c >= 65 && c <= 70) else { return false }
            }
        }
        return true
    }

    /// A new random uuid, lower case.
    public static func newUUID() -> String { UUID().uuidString.lowercased() }
}
