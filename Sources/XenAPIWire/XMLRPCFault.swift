/// An XML-RPC fault: the `faultCode` and `faultString` of a `<fault>` response.
public struct XMLRPCFault: Error, Sendable, Hashable {
    /// The fault code (`faultCode`, an `<int>`); for SMAPIv1 a code of the SM error table.
    public var code: Int32
    /// The fault text (`faultString`).
    public var string: String

    /// A fault with `code` and `string`.
    public init(code: Int32, string: String) {
        self.code = code
        self.string = string
    }
}
