/// The byte layout an `XMLRPCEncoder` produces.
public enum XMLRPCStyle: Sendable, Hashable {
    /// Python's `xmlrpc.client.dumps`: an XML declaration, one element per line, `<string>` and
    /// `<int>` elements. What the Python SM prints on stdout, and what `vdi_generate_config` returns.
    case python
    /// xapi's `XMLRPC.To` + `Xml.to_string`: one line, no declaration, bare strings, `<value/>`
    /// for the empty string, `<i4>`, self-closing empty elements. What xapi puts on a driver's argv.
    case xapi
}
