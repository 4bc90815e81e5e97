import Foundation

/// The XML of the `MGT` volume's fragments, as the Python SM writes and reads it: elements
/// without attributes holding text or other elements, whitespace between them, the five
/// predefined entities and character references. Reading is bounded (nesting at most
/// `maxDepth`, no allocation beyond the input) and fails with `corruptMetadata`, never traps.
enum LVHDMetadataXML {
    /// An element: its name, its text with references resolved, and the elements inside it.
    struct Element: Equatable {
        /// The tag name.
        var name: String
        /// The text inside, trimmed of surrounding whitespace as the Python SM's reader does.
        var text: String
        /// The elements inside.
        var children: [Element]

        /// The text of the last child called `name` (the Python SM keeps the last), nil without one.
        func child(_ name: String) -> String? { children.last { $0.name == name }?.text }
    }

    /// Deepest nesting read: `<vdi>` around its fields is the deepest the format has.
    static let maxDepth = 3

    /// `value` with `&`, `<` and `>` as entities (what the Python SM's `saxutils.escape` does;
    /// quotes need none in text).
    static func escape(_ value: String) -> String {
        var out = ""
        out.reserveCapacity(value.utf8.count)
        for c in value.unicodeScalars {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }

    /// `<name>escaped</name>` (the value is given escaped).
    static func element(_ name: String, _ escaped: String) -> String { "<\(name)>\(escaped)</\(name)>" }

    /// The elements of `bytes`, a sequence of elements with whitespace around them.
    static func parse(_ bytes: [UInt8]) throws -> [Element] {
        var reader = Reader(bytes: bytes)
        let elements = try reader.content(depth: 1)
        reader.skipSpace()
        guard reader.at == bytes.count else { throw reader.fail("text after the last element") }
        return elements
    }

    /// A cursor over the bytes.
    private struct Reader {
        let bytes: [UInt8]
        var at = 0

        func fail(_ why: String) -> LVHDError { .corruptMetadata("bad XML at byte \(at): \(why)") }

        func peek(_ offset: Int = 0) -> UInt8? { at + offset < bytes.count ? bytes[at + offset] : nil }

        mutating func skipSpace() {
            while let b = peek(), b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D { at += 1 }
        }

        mutating func expect(_ byte: UInt8) throws {
            guard peek() == byte else { throw fail("expected '\(Character(Unicode.Scalar(byte)))'") }
            at += 1
        }

        /// Elements up to the end or a closing tag, at nesting `depth`.
        mutating func content(depth: Int) throws -> [Element] {
            var out: [Element] = []
            while true {
                skipSpace()
                guard let b = peek(), !(b == UInt8(ascii: "<") && peek(1) == UInt8(ascii: "/")) else { return out }
                guard depth <= LVHDMetadataXML.maxDepth else { throw fail("nested too deep") }
                out.append(try element(depth: depth))
            }
        }

        /// One element starting at `<`.
        mutating func element(depth: Int) throws -> Element {
            try expect(UInt8(ascii: "<"))
            let name = try self.name()
            skipSpace()
            if peek() == UInt8(ascii: "/") {
                at += 1
                try expect(UInt8(ascii: ">"))
                return Element(name: name, text: "", children: [])
            }
            try expect(UInt8(ascii: ">"))
            let start = at
            while let b = peek(), b != UInt8(ascii: "<") { at += 1 }
            let raw = Array(bytes[start..<at])
            var children: [Element] = []
            if peek() == UInt8(ascii: "<"), peek(1) != UInt8(ascii: "/") {
                guard raw.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0A || $0 == 0x0D }) else {
                    throw fail("text beside elements in <\(name)>")
                }
                children = try content(depth: depth + 1)
            }
            try expect(UInt8(ascii: "<"))
            try expect(UInt8(ascii: "/"))
            guard try self.name() == name else { throw fail("<\(name)> closed by another tag") }
            skipSpace()
            try expect(UInt8(ascii: ">"))
            return Element(name: name, text: try text(raw), children: children)
        }

        /// A tag name: ASCII letters, digits, `_`, `-`, `.`, not starting with a digit.
        mutating func name() throws -> String {
            let start = at
            while let b = peek(), isNameByte(b, first: at == start) { at += 1 }
            guard at > start else { throw fail("expected a tag name") }
            return String(decoding: bytes[start..<at], as: UTF8.self)
        }

        func isNameByte(_ b: UInt8, first: Bool) -> Bool {
            switch b {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "_"): return true
            case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."): return !first
            default: return false
            }
        }

        /// Character data as a string: valid UTF-8, references resolved, whitespace trimmed.
        func text(_ raw: [UInt8]) throws -> String {
            guard let s = String(bytes: raw, encoding: .utf8) else { throw fail("text is not UTF-8") }
            var out = String.UnicodeScalarView()
            var scalars = s.unicodeScalars[...]
            while let c = scalars.popFirst() {
                guard c == "&" else { out.append(c); continue }
                guard let semi = scalars.prefix(12).firstIndex(of: ";") else { throw fail("unterminated reference") }
                let ref = String(scalars[..<semi])
                scalars = scalars[scalars.index(after: semi)...]
                switch ref {
                case "amp": out.append("&")
                case "lt": out.append("<")
                case "gt": out.append(">")
                case "quot": out.append("\"")
                case "apos": out.append("'")
                default:
                    let hex = ref.hasPrefix("#x"), dec = ref.hasPrefix("#")
                    guard dec, let n = UInt32(ref.dropFirst(hex ? 2 : 1), radix: hex ? 16 : 10),
                          let scalar = Unicode.Scalar(n) else { throw fail("unknown reference &\(ref);") }
                    out.append(scalar)
                }
            }
            return String(out).trimmingCharacters(in: .whitespacesAndNewlines)
        }
    }
}
