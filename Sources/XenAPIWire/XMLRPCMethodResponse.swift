/// An XML-RPC `<methodResponse>`: one result value or a fault.
public enum XMLRPCMethodResponse: Sendable, Hashable {
    /// A successful response carrying exactly one `<param>`.
    case success(XMLRPCValue)
    /// A `<fault>` response.
    case fault(XMLRPCFault)

    /// The result value, or nil for a fault.
    public var value: XMLRPCValue? {
        if case .success(let value) = self { return value }
        return nil
    }

    /// The fault, or nil for a success.
    public var faultValue: XMLRPCFault? {
        if case .fault(let fault) = self { return fault }
        return nil
    }

    /// The result value, or the fault thrown as an error.
    public func get() throws(XMLRPCFault) -> XMLRPCValue {
        switch self {
        case .success(let value): return value
        case .fault(let fault): throw fault
        }
    }
}
