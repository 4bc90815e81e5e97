/// One element of a parsed XML-RPC document: its name, child elements and directly contained text.
struct XMLRPCElement: Sendable {
    /// The element's qualified name.
    var name: String
    /// Child elements in document order.
    var children: [XMLRPCElement] = []
    /// The concatenation of all character data directly inside this element (entities resolved).
    var text: String = ""

    /// True when the directly contained text is empty or only XML whitespace.
    var textIsWhitespace: Bool {
        text.utf8.allSatisfy { $0 == 0x20 || $0 == 0x09 || $0 == 0x0A || $0 == 0x0D }
    }
}
