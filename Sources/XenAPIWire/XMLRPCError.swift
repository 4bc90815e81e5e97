/// Why an XML-RPC document could not be decoded; every case names what is wrong and where.
///
/// `path` values locate the offending element, e.g. `methodCall/params/param[0]/struct[device_config]`.
public enum XMLRPCError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The document is larger than the decoder's limit.
    case documentTooLarge(size: Int, limit: Int)
    /// Elements nest deeper than the decoder's limit.
    case nestingTooDeep(limit: Int)
    /// The document carries a DOCTYPE (DTD); refused so no entity can be declared or expanded.
    case doctypeForbidden
    /// The document is not UTF-8 (a UTF-16/32 byte order mark, NUL bytes, or another declared encoding).
    case unsupportedEncoding(String)
    /// The document is empty or only whitespace.
    case emptyDocument
    /// The XML itself is not well-formed (the parser's error code and position).
    case malformedXML(code: Int, line: Int, column: Int)
    /// The root element is not the one expected (`methodCall` or `methodResponse`).
    case unexpectedRoot(expected: String, found: String)
    /// An element appears where XML-RPC does not allow it, or is unknown.
    case unexpectedElement(String, path: String)
    /// A required element is missing.
    case missingElement(String, path: String)
    /// Non-whitespace text appears where only elements are allowed.
    case unexpectedText(path: String)
    /// An `<int>`/`<i4>` whose text is not a decimal integer.
    case invalidInteger(String, path: String)
    /// An `<int>`/`<i4>` whose value does not fit in 32 bits.
    case integerOverflow(String, path: String)
    /// A `<boolean>` whose text is neither `0` nor `1`.
    case invalidBoolean(String, path: String)
    /// A `<double>` whose text is not a number.
    case invalidDouble(String, path: String)
    /// A `<dateTime.iso8601>` whose text is not an ISO 8601 date and time.
    case invalidDateTime(String, path: String)
    /// A `<base64>` whose text is not valid base64.
    case invalidBase64(path: String)
    /// A struct holds two members with the same name.
    case duplicateMember(String, path: String)
    /// A `<fault>` whose struct lacks `faultCode`/`faultString`, has other members, or wrong types.
    case invalidFault(String)
    /// A response that does not carry exactly one `<param>`.
    case wrongParamCount(expected: Int, found: Int)

    /// A human-readable explanation naming the problem and its location.
    public var description: String {
        switch self {
        case .documentTooLarge(let size, let limit):
            return "XML-RPC document of \(size) bytes exceeds the limit of \(limit) bytes"
        case .nestingTooDeep(let limit):
            return "XML-RPC document nests elements deeper than \(limit) levels"
        case .doctypeForbidden:
            return "XML-RPC document contains a DOCTYPE declaration, which is refused"
        case .unsupportedEncoding(let what):
            return "XML-RPC document is not UTF-8: \(what)"
        case .emptyDocument:
            return "XML-RPC document is empty"
        case .malformedXML(let code, let line, let column):
            return "malformed XML at line \(line), column \(column) (parser error \(code))"
        case .unexpectedRoot(let expected, let found):
            return "expected root element <\(expected)>, found <\(found)>"
        case .unexpectedElement(let name, let path):
            return "unexpected element <\(name)> in \(path)"
        case .missingElement(let name, let path):
            return "missing element <\(name)> in \(path)"
        case .unexpectedText(let path):
            return "unexpected text in \(path)"
        case .invalidInteger(let text, let path):
            return "invalid integer \"\(text)\" in \(path)"
        case .integerOverflow(let text, let path):
            return "integer \"\(text)\" does not fit in 32 bits in \(path)"
        case .invalidBoolean(let text, let path):
            return "invalid boolean \"\(text)\" (expected 0 or 1) in \(path)"
        case .invalidDouble(let text, let path):
            return "invalid double \"\(text)\" in \(path)"
        case .invalidDateTime(let text, let path):
            return "invalid dateTime.iso8601 \"\(text)\" in \(path)"
        case .invalidBase64(let path):
            return "invalid base64 data in \(path)"
        case .duplicateMember(let name, let path):
            return "duplicate struct member \"\(name)\" in \(path)"
        case .invalidFault(let reason):
            return "invalid fault: \(reason)"
        case .wrongParamCount(let expected, let found):
            return "expected \(expected) <param> in the response, found \(found)"
        }
    }
}
