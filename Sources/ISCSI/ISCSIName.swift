/// iSCSI names (RFC 3720 §3.2.6): `iqn.YYYY-MM.reversed.domain[:anything]`, `eui.` and 16 hex
/// digits, `naa.` and 16 or 32 hex digits.
public enum ISCSIName {
    /// Whether `name` is a well-formed iSCSI name (at most 223 bytes, no spaces or controls).
    public static func isValid(_ name: String) -> Bool {
        guard !name.isEmpty, name.utf8.count <= 223,
              !name.unicodeScalars.contains(where: { $0.value <= 0x20 || $0.value == 0x7f }) else { return false }
        let lower = name.lowercased()
        if lower.hasPrefix("eui.") { return isHex(lower.dropFirst(4), counts: [16]) }
        if lower.hasPrefix("naa.") { return isHex(lower.dropFirst(4), counts: [16, 32]) }
        guard lower.hasPrefix("iqn.") else { return false }
        let rest = Array(lower.dropFirst(4).utf8)
        // YYYY-MM.
        guard rest.count >= 9, rest[0..<4].allSatisfy(isDigit), rest[4] == UInt8(ascii: "-"),
              rest[5..<7].allSatisfy(isDigit), rest[7] == UInt8(ascii: "."), rest.count > 8 else { return false }
        return true
    }

    private static func isDigit(_ c: UInt8) -> Bool { c >= 48 && c <= 57 }

    private static func isHex(_ s: Substring, counts: [Int]) -> Bool {
        counts.contains(s.count) && s.allSatisfy(\.isHexDigit)
    }
}
