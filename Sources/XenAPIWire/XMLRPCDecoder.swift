import Foundation

/// Decodes XML-RPC method calls and responses with the value rules of Python's `xmlrpc.client`
/// (bare text in `<value>` is a string, `<value/>` is the empty string, whitespace between
/// elements is ignored) and a typed error for anything else.
public struct XMLRPCDecoder: Sendable {
    /// The bounds enforced on every document.
    public var limits: XMLRPCLimits

    /// A decoder enforcing `limits`.
    public init(limits: XMLRPCLimits = .default) {
        self.limits = limits
    }

    /// Decodes a `<methodCall>` document given as bytes.
    public func decodeMethodCall(_ data: Data) throws(XMLRPCError) -> XMLRPCMethodCall {
        let root = try XMLRPCDocumentParser(limits: limits).parse(data)
        return try Self.methodCall(root)
    }

    /// Decodes a `<methodCall>` document given as text (as on a driver's command line).
    public func decodeMethodCall(_ text: String) throws(XMLRPCError) -> XMLRPCMethodCall {
        try decodeMethodCall(try bytes(of: text))
    }

    /// Decodes a `<methodResponse>` document given as bytes.
    public func decodeMethodResponse(_ data: Data) throws(XMLRPCError) -> XMLRPCMethodResponse {
        let root = try XMLRPCDocumentParser(limits: limits).parse(data)
        return try Self.methodResponse(root)
    }

    /// Decodes a `<methodResponse>` document given as text (as read from a driver's stdout).
    public func decodeMethodResponse(_ text: String) throws(XMLRPCError) -> XMLRPCMethodResponse {
        try decodeMethodResponse(try bytes(of: text))
    }

    /// Decodes a document whose root is a single `<value>` element.
    public func decodeValue(_ text: String) throws(XMLRPCError) -> XMLRPCValue {
        let root = try XMLRPCDocumentParser(limits: limits).parse(try bytes(of: text))
        guard root.name == "value" else { throw .unexpectedRoot(expected: "value", found: root.name) }
        return try Self.value(root, path: "value")
    }

    /// The UTF-8 bytes of `text`, checking the size limit before copying.
    private func bytes(of text: String) throws(XMLRPCError) -> Data {
        let size = text.utf8.count
        guard size <= limits.maxDocumentBytes else {
            throw .documentTooLarge(size: size, limit: limits.maxDocumentBytes)
        }
        return Data(text.utf8)
    }

    // MARK: - Documents

    /// Reads `<methodCall><methodName/><params/></methodCall>`.
    static func methodCall(_ root: XMLRPCElement) throws(XMLRPCError) -> XMLRPCMethodCall {
        guard root.name == "methodCall" else { throw .unexpectedRoot(expected: "methodCall", found: root.name) }
        let path = "methodCall"
        try requireNoText(root, path: path)
        var methodName: String?
        var params: [XMLRPCValue]?
        for child in root.children {
            switch child.name {
            case "methodName" where methodName == nil:
                guard child.children.isEmpty else {
                    throw .unexpectedElement(child.children[0].name, path: path + "/methodName")
                }
                methodName = child.text
            case "params" where params == nil:
                params = try self.params(child, path: path + "/params")
            default:
                throw .unexpectedElement(child.name, path: path)
            }
        }
        guard let methodName else { throw .missingElement("methodName", path: path) }
        return XMLRPCMethodCall(methodName: methodName, params: params ?? [])
    }

    /// Reads `<methodResponse>` holding either `<params>` with one `<param>` or a `<fault>`.
    static func methodResponse(_ root: XMLRPCElement) throws(XMLRPCError) -> XMLRPCMethodResponse {
        guard root.name == "methodResponse" else {
            throw .unexpectedRoot(expected: "methodResponse", found: root.name)
        }
        let path = "methodResponse"
        try requireNoText(root, path: path)
        guard let body = root.children.first else { throw .missingElement("params", path: path) }
        guard root.children.count == 1 else { throw .unexpectedElement(root.children[1].name, path: path) }
        switch body.name {
        case "params":
            let values = try params(body, path: path + "/params")
            guard values.count == 1 else { throw .wrongParamCount(expected: 1, found: values.count) }
            return .success(values[0])
        case "fault":
            return .fault(try fault(body, path: path + "/fault"))
        default:
            throw .unexpectedElement(body.name, path: path)
        }
    }

    /// Reads the `<param><value/></param>` children of `<params>`.
    private static func params(_ element: XMLRPCElement, path: String) throws(XMLRPCError) -> [XMLRPCValue] {
        try requireNoText(element, path: path)
        var values: [XMLRPCValue] = []
        for (index, param) in element.children.enumerated() {
            guard param.name == "param" else { throw .unexpectedElement(param.name, path: path) }
            let paramPath = "\(path)/param[\(index)]"
            values.append(try value(try onlyValueChild(param, path: paramPath), path: paramPath))
        }
        return values
    }

    /// Reads `<fault><value><struct>` with exactly `faultCode` (int) and `faultString` (string).
    private static func fault(_ element: XMLRPCElement, path: String) throws(XMLRPCError) -> XMLRPCFault {
        let decoded = try value(try onlyValueChild(element, path: path), path: path)
        guard let members = decoded.structMembers else {
            throw .invalidFault("expected a struct, found \(decoded.typeName)")
        }
        var code: Int32?
        var string: String?
        for member in members {
            switch (member.name, member.value) {
            case ("faultCode", .int(let number)): code = number
            case ("faultString", .string(let text)): string = text
            case ("faultCode", let other), ("faultString", let other):
                throw .invalidFault("member \(member.name) has type \(other.typeName)")
            default:
                throw .invalidFault("unexpected member \(member.name)")
            }
        }
        guard let code else { throw .invalidFault("missing faultCode") }
        guard let string else { throw .invalidFault("missing faultString") }
        return XMLRPCFault(code: code, string: string)
    }

    /// The single `<value>` child of `element` (a `<param>`, `<fault>` or `<member>` value slot).
    private static func onlyValueChild(_ element: XMLRPCElement, path: String) throws(XMLRPCError) -> XMLRPCElement {
        try requireNoText(element, path: path)
        guard let child = element.children.first else { throw .missingElement("value", path: path) }
        guard child.name == "value" else { throw .unexpectedElement(child.name, path: path) }
        guard element.children.count == 1 else { throw .unexpectedElement(element.children[1].name, path: path) }
        return child
    }

    /// Throws when `element` directly contains anything but whitespace.
    private static func requireNoText(_ element: XMLRPCElement, path: String) throws(XMLRPCError) {
        guard element.textIsWhitespace else { throw .unexpectedText(path: path) }
    }

    // MARK: - Values

    /// Reads one `<value>` element.
    static func value(_ element: XMLRPCElement, path: String) throws(XMLRPCError) -> XMLRPCValue {
        guard let typed = element.children.first else { return .string(element.text) }
        guard element.children.count == 1 else { throw .unexpectedElement(element.children[1].name, path: path) }
        try requireNoText(element, path: path)
        let typedPath = path + "/" + typed.name
        switch typed.name {
        case "struct": return try structValue(typed, path: typedPath)
        case "array": return try arrayValue(typed, path: typedPath)
        default: break
        }
        guard typed.children.isEmpty else { throw .unexpectedElement(typed.children[0].name, path: typedPath) }
        let text = typed.text
        switch typed.name {
        case "string":
            return .string(text)
        case "int", "i4":
            return .int(try integer(text, path: typedPath))
        case "boolean":
            switch text {
            case "0": return .boolean(false)
            case "1": return .boolean(true)
            default: throw .invalidBoolean(text, path: typedPath)
            }
        case "double":
            return .double(try double(text, path: typedPath))
        case "dateTime.iso8601":
            return .dateTime(try dateTime(text, path: typedPath))
        case "base64":
            let compact = String(text.unicodeScalars.filter { !" \t\r\n".unicodeScalars.contains($0) })
            guard let bytes = Data(base64Encoded: compact) else { throw .invalidBase64(path: typedPath) }
            return .base64(bytes)
        case "nil":
            try requireNoText(typed, path: typedPath)
            return .nil
        default:
            throw .unexpectedElement(typed.name, path: path)
        }
    }

    /// Reads `<struct>` members, refusing duplicates and anything but `<member><name/><value/></member>`.
    private static func structValue(_ element: XMLRPCElement, path: String) throws(XMLRPCError) -> XMLRPCValue {
        try requireNoText(element, path: path)
        var members: [XMLRPCMember] = []
        var seen = Set<String>()
        for member in element.children {
            guard member.name == "member" else { throw .unexpectedElement(member.name, path: path) }
            try requireNoText(member, path: path + "/member")
            guard let nameElement = member.children.first, nameElement.name == "name" else {
                throw .missingElement("name", path: path + "/member")
            }
            guard nameElement.children.isEmpty else {
                throw .unexpectedElement(nameElement.children[0].name, path: path + "/member/name")
            }
            let name = nameElement.text
            let memberPath = "\(path)/member[\(name)]"
            guard member.children.count >= 2 else { throw .missingElement("value", path: memberPath) }
            let valueElement = member.children[1]
            guard valueElement.name == "value" else { throw .unexpectedElement(valueElement.name, path: memberPath) }
            guard member.children.count == 2 else { throw .unexpectedElement(member.children[2].name, path: memberPath) }
            guard seen.insert(name).inserted else { throw .duplicateMember(name, path: path) }
            members.append(XMLRPCMember(name, try value(valueElement, path: memberPath)))
        }
        return .struct(members)
    }

    /// Reads `<array><data><value/>…</data></array>`.
    private static func arrayValue(_ element: XMLRPCElement, path: String) throws(XMLRPCError) -> XMLRPCValue {
        try requireNoText(element, path: path)
        guard let data = element.children.first else { throw .missingElement("data", path: path) }
        guard data.name == "data" else { throw .unexpectedElement(data.name, path: path) }
        guard element.children.count == 1 else { throw .unexpectedElement(element.children[1].name, path: path) }
        try requireNoText(data, path: path + "/data")
        var elements: [XMLRPCValue] = []
        elements.reserveCapacity(data.children.count)
        for (index, item) in data.children.enumerated() {
            guard item.name == "value" else { throw .unexpectedElement(item.name, path: path + "/data") }
            elements.append(try value(item, path: "\(path)/data[\(index)]"))
        }
        return .array(elements)
    }

    /// Parses a decimal 32-bit integer, surrounding whitespace allowed (as Python's `int()`).
    private static func integer(_ text: String, path: String) throws(XMLRPCError) -> Int32 {
        let trimmed = trimmingXMLWhitespace(text)
        var digits = Substring(trimmed)
        if let sign = digits.first, sign == "+" || sign == "-" { digits = digits.dropFirst() }
        guard !digits.isEmpty, digits.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else {
            throw .invalidInteger(text, path: path)
        }
        let normalized = trimmed.hasPrefix("+") ? String(trimmed.dropFirst()) : trimmed
        guard let number = Int32(normalized) else { throw .integerOverflow(text, path: path) }
        return number
    }

    /// Parses a decimal floating-point number (digits, sign, point, exponent, or inf/nan).
    private static func double(_ text: String, path: String) throws(XMLRPCError) -> Double {
        let trimmed = trimmingXMLWhitespace(text)
        let lowered = trimmed.lowercased()
        let special = ["inf", "+inf", "-inf", "infinity", "+infinity", "-infinity", "nan", "+nan", "-nan"]
        let decimal = !trimmed.isEmpty && trimmed.utf8.allSatisfy {
            ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2B || $0 == 0x2D || $0 == 0x2E || $0 == 0x45 || $0 == 0x65
        }
        guard decimal || special.contains(lowered), let number = Double(lowered) else {
            throw .invalidDouble(text, path: path)
        }
        return number
    }

    /// Checks an ISO 8601 date-time (`YYYYMMDDTHH:MM:SS` or `YYYY-MM-DDTHH:MM:SS`, optional
    /// fraction and `Z`/offset) and returns it without surrounding whitespace.
    private static func dateTime(_ text: String, path: String) throws(XMLRPCError) -> String {
        let trimmed = trimmingXMLWhitespace(text)
        guard isISO8601DateTime(Array(trimmed.utf8)) else { throw .invalidDateTime(text, path: path) }
        return trimmed
    }

    /// The date-time grammar accepted by `dateTime(_:path:)`.
    private static func isISO8601DateTime(_ bytes: [UInt8]) -> Bool {
        var index = 0
        func digits(_ count: Int) -> Bool {
            guard index + count <= bytes.count else { return false }
            for offset in 0..<count where !(0x30...0x39).contains(bytes[index + offset]) { return false }
            index += count
            return true
        }
        func literal(_ character: Character) -> Bool {
            guard index < bytes.count, bytes[index] == character.asciiValue else { return false }
            index += 1
            return true
        }
        guard digits(4) else { return false }
        let extended = literal("-")
        guard digits(2), !extended || literal("-"), digits(2), literal("T"),
              digits(2), literal(":"), digits(2), literal(":"), digits(2) else { return false }
        if literal(".") {
            guard digits(1) else { return false }
            while index < bytes.count, (0x30...0x39).contains(bytes[index]) { index += 1 }
        }
        if index == bytes.count { return true }
        if literal("Z") { return index == bytes.count }
        guard literal("+") || literal("-"), digits(2) else { return false }
        _ = literal(":")
        return digits(2) && index == bytes.count
    }

    /// `text` without leading and trailing XML whitespace.
    private static func trimmingXMLWhitespace(_ text: String) -> String {
        let whitespace: Set<Character> = [" ", "\t", "\n", "\r", "\r\n"]
        var slice = Substring(text)
        while let first = slice.first, whitespace.contains(first) { slice = slice.dropFirst() }
        while let last = slice.last, whitespace.contains(last) { slice = slice.dropLast() }
        return String(slice)
    }
}
