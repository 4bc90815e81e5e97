/// A bounded parser of lvm2's config syntax (the text metadata): typed errors on anything
/// malformed, no recursion deeper than `maxDepth`, nothing allocated beyond the input's size.
public struct ConfigParser {
    /// Deepest section nesting accepted (a VG needs 4: VG, logical_volumes, LV, segment).
    public static let maxDepth = 16
    /// Largest text accepted (bytes; the default metadata area holds copies of at most ~510 KiB).
    public static let maxTextSize = 64 << 20

    private let bytes: [UInt8]
    private var pos = 0
    private var line = 1

    /// Parses `text` into its top-level entries.
    public static func parse(_ text: [UInt8]) throws -> [ConfigEntry] {
        guard text.count <= maxTextSize else { throw LVMError.syntax(line: 0, reason: "text of \(text.count) bytes is too large") }
        var p = ConfigParser(bytes: text)
        return try p.entries(depth: 0, closing: false)
    }

    private init(bytes: [UInt8]) {
        self.bytes = bytes
    }

    private func fail(_ reason: String) -> LVMError { .syntax(line: line, reason: reason) }

    /// Skips whitespace and `#` comments.
    private mutating func skipBlank() {
        while pos < bytes.count {
            let c = bytes[pos]
            if c == UInt8(ascii: "\n") { line += 1; pos += 1 }
            else if c == 0x20 || c == 0x09 || c == 0x0d { pos += 1 }
            else if c == UInt8(ascii: "#") {
                while pos < bytes.count && bytes[pos] != UInt8(ascii: "\n") { pos += 1 }
            } else { return }
        }
    }

    /// Whether `c` may appear in a key or section name.
    private static func isNameByte(_ c: UInt8) -> Bool {
        (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a)
            || c == UInt8(ascii: "_") || c == UInt8(ascii: ".") || c == UInt8(ascii: "+") || c == UInt8(ascii: "-")
    }

    /// Entries until end of input (top level) or the closing `}`.
    private mutating func entries(depth: Int, closing: Bool) throws -> [ConfigEntry] {
        guard depth <= ConfigParser.maxDepth else { throw fail("sections nested deeper than \(ConfigParser.maxDepth)") }
        var out: [ConfigEntry] = []
        while true {
            skipBlank()
            guard pos < bytes.count else {
                if closing { throw fail("unterminated section (missing '}')") }
                return out
            }
            if bytes[pos] == UInt8(ascii: "}") {
                guard closing else { throw fail("unexpected '}'") }
                pos += 1
                return out
            }
            if bytes[pos] == 0 { throw fail("NUL byte inside the text") }
            let start = pos
            while pos < bytes.count && ConfigParser.isNameByte(bytes[pos]) { pos += 1 }
            guard pos > start else { throw fail("expected a key, found byte 0x\(String(bytes[pos], radix: 16))") }
            let key = String(decoding: bytes[start..<pos], as: UTF8.self)
            skipBlank()
            guard pos < bytes.count else { throw fail("key \(key) has no value") }
            if bytes[pos] == UInt8(ascii: "{") {
                pos += 1
                out.append(ConfigEntry(key, .section(try entries(depth: depth + 1, closing: true))))
            } else if bytes[pos] == UInt8(ascii: "=") {
                pos += 1
                skipBlank()
                out.append(ConfigEntry(key, try value(allowArray: true)))
            } else {
                throw fail("expected '=' or '{' after \(key)")
            }
        }
    }

    /// One value: integer, string, or (at the top of a value) an array of scalars.
    private mutating func value(allowArray: Bool) throws -> ConfigValue {
        guard pos < bytes.count else { throw fail("missing value") }
        let c = bytes[pos]
        if c == UInt8(ascii: "\"") { return .string(try string()) }
        if c == UInt8(ascii: "-") || (c >= 0x30 && c <= 0x39) { return .integer(try integer()) }
        if c == UInt8(ascii: "[") {
            guard allowArray else { throw fail("arrays may not nest") }
            pos += 1
            var items: [ConfigValue] = []
            skipBlank()
            if pos < bytes.count && bytes[pos] == UInt8(ascii: "]") { pos += 1; return .array(items) }
            while true {
                skipBlank()
                items.append(try value(allowArray: false))
                skipBlank()
                guard pos < bytes.count else { throw fail("unterminated array") }
                if bytes[pos] == UInt8(ascii: ",") { pos += 1; continue }
                if bytes[pos] == UInt8(ascii: "]") { pos += 1; return .array(items) }
                throw fail("expected ',' or ']' in array")
            }
        }
        throw fail("unexpected byte 0x\(String(c, radix: 16)) where a value belongs")
    }

    /// A decimal integer that fits in 64 bits.
    private mutating func integer() throws -> Int64 {
        var negative = false
        if bytes[pos] == UInt8(ascii: "-") { negative = true; pos += 1 }
        var v: Int64 = 0
        let start = pos
        while pos < bytes.count, bytes[pos] >= 0x30, bytes[pos] <= 0x39 {
            let (m, o1) = v.multipliedReportingOverflow(by: 10)
            let (a, o2) = m.addingReportingOverflow(Int64(bytes[pos] - 0x30))
            guard !o1, !o2 else { throw fail("integer out of range") }
            v = a
            pos += 1
        }
        guard pos > start else { throw fail("'-' without digits") }
        if pos < bytes.count, bytes[pos] == UInt8(ascii: ".") || ConfigParser.isNameByte(bytes[pos]) {
            throw fail("malformed number")
        }
        return negative ? -v : v
    }

    /// A double-quoted string with backslash escapes.
    private mutating func string() throws -> String {
        let startLine = line
        pos += 1
        var out: [UInt8] = []
        while pos < bytes.count {
            let c = bytes[pos]
            if c == UInt8(ascii: "\"") { pos += 1; return String(decoding: out, as: UTF8.self) }
            if c == 0 { break }
            if c == UInt8(ascii: "\n") { line += 1 }
            if c == UInt8(ascii: "\\") {
                pos += 1
                guard pos < bytes.count else { break }
            }
            out.append(bytes[pos])
            pos += 1
        }
        throw LVMError.syntax(line: startLine, reason: "unterminated string")
    }
}
