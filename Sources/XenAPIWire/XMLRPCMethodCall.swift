/// An XML-RPC `<methodCall>`: a method name and positional parameters.
public struct XMLRPCMethodCall: Sendable, Hashable {
    /// The method name (`<methodName>`); for SMAPIv1 the command, e.g. `vdi_create`.
    public var methodName: String
    /// The parameters in order (`<params><param>`); SMAPIv1 sends exactly one struct.
    public var params: [XMLRPCValue]

    /// A call of `methodName` with `params`.
    public init(methodName: String, params: [XMLRPCValue]) {
        self.methodName = methodName
        self.params = params
    }
}
