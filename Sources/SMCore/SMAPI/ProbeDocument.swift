/// The XML documents `sr_probe` prints (on stdout as its result, or on stderr beside a fault
/// for XenCenter to parse), laid out as Python's `minidom.toprettyxml()` lays them out: the
/// declaration, one element per line, tab indentation, text escaped.
public enum ProbeDocument {
    /// One child of the root: `<tag>` holding `<name>value</name>` fields in order.
    public struct Entry: Sendable {
        /// The element's name.
        public var tag: String
        /// Its fields, in order.
        public var fields: [(name: String, value: String)]

        /// An entry.
        public init(_ tag: String, _ fields: [(name: String, value: String)]) {
            self.tag = tag
            self.fields = fields
        }
    }

    /// `<?xml version="1.0" ?>` and `<root>` holding `entries` (`<root/>` without any).
    public static func render(root: String, entries: [Entry]) -> String {
        var out = "<?xml version=\"1.0\" ?>\n"
        guard !entries.isEmpty else { return out + "<\(root)/>\n" }
        out += "<\(root)>\n"
        for e in entries {
            out += "\t<\(e.tag)>\n"
            for f in e.fields { out += "\t\t<\(f.name)>\(escape(f.value))</\(f.name)>\n" }
            out += "\t</\(e.tag)>\n"
        }
        return out + "</\(root)>\n"
    }

    /// XML text escaping (`&`, `<`, `>`, `"`), as minidom writes text nodes.
    public static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}
