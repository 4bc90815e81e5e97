import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif

/// Turns the bytes of an XML-RPC document into an element tree with Foundation's `XMLParser`,
/// refusing DTDs, oversized documents and excessive nesting before they can cause harm.
struct XMLRPCDocumentParser: Sendable {
    /// The bounds to enforce.
    var limits: XMLRPCLimits

    /// Parses `data` into its root element, or throws the first problem found.
    func parse(_ data: Data) throws(XMLRPCError) -> XMLRPCElement {
        guard data.count <= limits.maxDocumentBytes else {
            throw .documentTooLarge(size: data.count, limit: limits.maxDocumentBytes)
        }
        try Self.screen(data)
        let parser = XMLParser(data: data)
        parser.shouldResolveExternalEntities = false
        parser.shouldProcessNamespaces = false
        parser.shouldReportNamespacePrefixes = false
        let builder = TreeBuilder(maxDepth: limits.maxDepth)
        parser.delegate = builder
        let finished = parser.parse()
        parser.delegate = nil
        if let error = builder.error { throw error }
        if let failure = parser.parserError as NSError? {
            throw .malformedXML(code: failure.code, line: parser.lineNumber, column: parser.columnNumber)
        }
        guard finished else {
            throw .malformedXML(code: 0, line: parser.lineNumber, column: parser.columnNumber)
        }
        guard let root = builder.root else {
            let blank = data.allSatisfy { $0 == 0x20 || $0 == 0x09 || $0 == 0x0A || $0 == 0x0D }
            if blank { throw .emptyDocument }
            throw .malformedXML(code: XMLParser.ErrorCode.prematureDocumentEndError.rawValue,
                                line: parser.lineNumber, column: parser.columnNumber)
        }
        guard builder.stack.isEmpty else {
            throw .malformedXML(code: XMLParser.ErrorCode.prematureDocumentEndError.rawValue,
                                line: parser.lineNumber, column: parser.columnNumber)
        }
        return root
    }

    /// Rejects, before any XML parsing, documents that could declare entities or hide markup
    /// from a byte-level check: any `<!` that opens neither a comment nor a CDATA section
    /// (that is a DOCTYPE or other declaration), NUL bytes, UTF-16/32 byte order marks, and
    /// XML declarations naming an encoding other than UTF-8 or US-ASCII.
    static func screen(_ data: Data) throws(XMLRPCError) {
        let bytes = [UInt8](data)
        if bytes.starts(with: [0xFE, 0xFF]) || bytes.starts(with: [0xFF, 0xFE]) {
            throw .unsupportedEncoding("UTF-16 or UTF-32 byte order mark")
        }
        if bytes.contains(0) { throw .unsupportedEncoding("NUL byte") }
        try checkDeclaredEncoding(bytes)
        let comment: [UInt8] = Array("<!--".utf8), commentEnd: [UInt8] = Array("-->".utf8)
        let cdata: [UInt8] = Array("<![CDATA[".utf8), cdataEnd: [UInt8] = Array("]]>".utf8)
        var index = 0
        while index < bytes.count {
            guard bytes[index] == UInt8(ascii: "<"), index + 1 < bytes.count,
                  bytes[index + 1] == UInt8(ascii: "!") else {
                index += 1
                continue
            }
            let terminator: [UInt8]
            if matches(bytes, at: index, comment) {
                terminator = commentEnd
                index += comment.count
            } else if matches(bytes, at: index, cdata) {
                terminator = cdataEnd
                index += cdata.count
            } else {
                throw .doctypeForbidden
            }
            while index < bytes.count, !matches(bytes, at: index, terminator) { index += 1 }
            index += terminator.count
        }
    }

    /// True when `needle` occurs in `bytes` at `offset`.
    private static func matches(_ bytes: [UInt8], at offset: Int, _ needle: [UInt8]) -> Bool {
        guard offset + needle.count <= bytes.count else { return false }
        for (position, byte) in needle.enumerated() where bytes[offset + position] != byte { return false }
        return true
    }

    /// Refuses an XML declaration whose `encoding` is not UTF-8 or US-ASCII (the only byte
    /// encodings the screen above can see through).
    private static func checkDeclaredEncoding(_ bytes: [UInt8]) throws(XMLRPCError) {
        var start = 0
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { start = 3 }
        guard matches(bytes, at: start, Array("<?xml".utf8)) else { return }
        var end = start
        while end < bytes.count, !matches(bytes, at: end, Array("?>".utf8)) { end += 1 }
        let declaration = String(decoding: bytes[start..<min(end, bytes.count)], as: UTF8.self)
        guard let range = declaration.range(of: "encoding") else { return }
        let rest = declaration[range.upperBound...].drop { $0 == " " || $0 == "=" || $0 == "\t" }
        guard let quote = rest.first, quote == "\"" || quote == "'" else { return }
        let name = rest.dropFirst().prefix { $0 != quote }.lowercased()
        guard ["utf-8", "utf8", "us-ascii", "ascii"].contains(name) else {
            throw .unsupportedEncoding("declared encoding \(name)")
        }
    }
}

/// The `XMLParser` delegate that builds the element tree and stops at the first problem.
private final class TreeBuilder: NSObject, XMLParserDelegate {
    /// The deepest nesting allowed.
    let maxDepth: Int
    /// Open elements, innermost last.
    var stack: [XMLRPCElement] = []
    /// The finished root element.
    var root: XMLRPCElement?
    /// The first problem found; once set, every further event is ignored.
    var error: XMLRPCError?

    /// A builder refusing nesting deeper than `maxDepth`.
    init(maxDepth: Int) {
        self.maxDepth = maxDepth
    }

    /// Records `problem` (unless one is already recorded) and stops the parser.
    private func fail(_ parser: XMLParser, _ problem: XMLRPCError) {
        if error == nil { error = problem }
        parser.abortParsing()
    }

    /// Opens an element, refusing a second root or excessive depth.
    func parser(_ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?,
                qualifiedName qName: String?, attributes attributeDict: [String: String] = [:]) {
        guard error == nil else { return }
        if root != nil {
            fail(parser, .malformedXML(code: XMLParser.ErrorCode.prematureDocumentEndError.rawValue,
                                       line: parser.lineNumber, column: parser.columnNumber))
            return
        }
        guard stack.count < maxDepth else {
            fail(parser, .nestingTooDeep(limit: maxDepth))
            return
        }
        stack.append(XMLRPCElement(name: elementName))
    }

    /// Closes the innermost element and attaches it to its parent (or makes it the root).
    func parser(_ parser: XMLParser, didEndElement elementName: String, namespaceURI: String?,
                qualifiedName qName: String?) {
        guard error == nil, let element = stack.popLast() else { return }
        if stack.isEmpty {
            root = element
        } else {
            stack[stack.count - 1].children.append(element)
        }
    }

    /// Appends character data (entities already resolved) to the innermost element.
    func parser(_ parser: XMLParser, foundCharacters string: String) {
        guard error == nil, !stack.isEmpty else { return }
        stack[stack.count - 1].text += string
    }

    /// Appends whitespace the parser deems ignorable to the innermost element.
    func parser(_ parser: XMLParser, foundIgnorableWhitespace whitespaceString: String) {
        guard error == nil, !stack.isEmpty else { return }
        stack[stack.count - 1].text += whitespaceString
    }

    /// Appends a CDATA section, which must be UTF-8, to the innermost element.
    func parser(_ parser: XMLParser, foundCDATA CDATABlock: Data) {
        guard error == nil, !stack.isEmpty else { return }
        guard let text = String(data: CDATABlock, encoding: .utf8) else {
            fail(parser, .malformedXML(code: XMLParser.ErrorCode.invalidCharacterError.rawValue,
                                       line: parser.lineNumber, column: parser.columnNumber))
            return
        }
        stack[stack.count - 1].text += text
    }

    /// Records a well-formedness error.
    func parser(_ parser: XMLParser, parseErrorOccurred parseError: Error) {
        fail(parser, .malformedXML(code: (parseError as NSError).code,
                                   line: parser.lineNumber, column: parser.columnNumber))
    }

    /// Records a validation error.
    func parser(_ parser: XMLParser, validationErrorOccurred validationError: Error) {
        fail(parser, .malformedXML(code: (validationError as NSError).code,
                                   line: parser.lineNumber, column: parser.columnNumber))
    }

    // Defence in depth: the byte screen already refuses DTDs, so none of these can fire.


    /// Refuses an internal entity declaration.
    func parser(_ parser: XMLParser, foundInternalEntityDeclarationWithName name: String, value: String?) {
        fail(parser, .doctypeForbidden)
    }

    /// Refuses an external entity declaration.
    func parser(_ parser: XMLParser, foundExternalEntityDeclarationWithName name: String,
                publicID: String?, systemID: String?) {
        fail(parser, .doctypeForbidden)
    }

    /// Refuses an unparsed entity declaration.
    func parser(_ parser: XMLParser, foundUnparsedEntityDeclarationWithName name: String,
                publicID: String?, systemID: String?, notationName: String?) {
        fail(parser, .doctypeForbidden)
    }

    /// Refuses a notation declaration.
    func parser(_ parser: XMLParser, foundNotationDeclarationWithName name: String,
                publicID: String?, systemID: String?) {
        fail(parser, .doctypeForbidden)
    }

    /// Refuses an element declaration.
    func parser(_ parser: XMLParser, foundElementDeclarationWithName elementName: String, model: String) {
        fail(parser, .doctypeForbidden)
    }

    /// Refuses an attribute-list declaration.
    func parser(_ parser: XMLParser, foundAttributeDeclarationWithName attributeName: String,
                forElement elementName: String, type: String?, defaultValue: String?) {
        fail(parser, .doctypeForbidden)
    }

    /// Called for an entity reference libxml2 cannot resolve itself; with DTDs refused that can
    /// only be an undeclared entity, which is not well-formed.
    func parser(_ parser: XMLParser, resolveExternalEntityName name: String, systemID: String?) -> Data? {
        fail(parser, .malformedXML(code: XMLParser.ErrorCode.undeclaredEntityError.rawValue,
                                   line: parser.lineNumber, column: parser.columnNumber))
        return nil
    }
}
