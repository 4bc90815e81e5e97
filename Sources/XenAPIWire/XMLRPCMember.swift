/// One member of an XML-RPC struct: a name and its value.
public struct XMLRPCMember: Sendable, Hashable {
    /// The member name (`<name>`).
    public var name: String
    /// The member value (`<value>`).
    public var value: XMLRPCValue

    /// A member called `name` holding `value`.
    public init(_ name: String, _ value: XMLRPCValue) {
        self.name = name
        self.value = value
    }
}
