/// Typed access to the members of a result struct, failing like xapi's result parsers.
struct SMAPIResultReader {
    /// The struct's members.
    let members: [XMLRPCMember]

    /// A reader over `value`, which must be a struct.
    init(_ value: XMLRPCValue) throws(SMAPIResultError) {
        guard let members = value.structMembers else { throw .wrongType(expected: "struct", found: value.typeName) }
        self.members = members
    }

    /// The member called `name`, if present.
    func field(_ name: String) -> XMLRPCValue? {
        members.first { $0.name == name }?.value
    }

    /// The string member `name`, or nil when absent.
    func optionalString(_ name: String) throws(SMAPIResultError) -> String? {
        guard let value = field(name) else { return nil }
        guard let text = value.stringValue else {
            throw .wrongFieldType(name, expected: "string", found: value.typeName)
        }
        return text
    }

    /// The string member `name`, which must be present.
    func string(_ name: String) throws(SMAPIResultError) -> String {
        guard let text = try optionalString(name) else { throw .missingField(name) }
        return text
    }

    /// The array-of-strings member `name`, or nil when absent.
    func optionalStrings(_ name: String) throws(SMAPIResultError) -> [String]? {
        guard let value = field(name) else { return nil }
        guard let elements = value.arrayValue else {
            throw .wrongFieldType(name, expected: "array of strings", found: value.typeName)
        }
        var texts: [String] = []
        for element in elements {
            guard let text = element.stringValue else {
                throw .wrongFieldType(name, expected: "array of strings", found: "array of \(element.typeName)")
            }
            texts.append(text)
        }
        return texts
    }

    /// The array-of-strings member `name`, which must be present.
    func strings(_ name: String) throws(SMAPIResultError) -> [String] {
        guard let texts = try optionalStrings(name) else { throw .missingField(name) }
        return texts
    }
}
