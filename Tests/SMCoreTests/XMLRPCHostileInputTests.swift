import Foundation
import Testing
@testable import SMCore

/// Hostile and malformed documents give a typed `XMLRPCError`, never a crash or an expansion.
@Suite struct XMLRPCHostileInputTests {
    let decoder = XMLRPCDecoder()

    /// The error decoding `text` as a method call throws (nil when it decodes).
    func callError(_ text: String) -> XMLRPCError? {
        do {
            _ = try decoder.decodeMethodCall(text)
            return nil
        } catch {
            return error
        }
    }

    /// The error decoding `text` as a method response throws (nil when it decodes).
    func responseError(_ text: String) -> XMLRPCError? {
        do {
            _ = try decoder.decodeMethodResponse(text)
            return nil
        } catch {
            return error
        }
    }

    func response(_ inner: String) -> String {
        "<methodResponse><params><param>\(inner)</param></params></methodResponse>"
    }

    @Test("a DOCTYPE declaring an entity is refused")
    func doctypeEntity() {
        let doc = """
        <?xml version="1.0"?>
        <!DOCTYPE methodCall [<!ENTITY name "sr_scan">]>
        <methodCall><methodName>&name;</methodName><params/></methodCall>
        """
        #expect(callError(doc) == .doctypeForbidden)
        #expect(callError("<!DOCTYPE methodCall><methodCall><methodName>x</methodName></methodCall>") == .doctypeForbidden)
    }

    @Test("billion laughs is refused before any expansion")
    func billionLaughs() {
        var doc = "<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [\n<!ENTITY lol \"lol\">\n"
        for level in 1...9 {
            let previous = level == 1 ? "lol" : "lol\(level - 1)"
            doc += "<!ENTITY lol\(level) \"" + String(repeating: "&\(previous);", count: 10) + "\">\n"
        }
        doc += "]>\n<methodCall><methodName>&lol9;</methodName></methodCall>"
        let start = Date()
        #expect(callError(doc) == .doctypeForbidden)
        #expect(Date().timeIntervalSince(start) < 1)
    }

    @Test("external entities (file, URL, parameter entity) are refused")
    func externalEntity() {
        let file = """
        <?xml version="1.0"?><!DOCTYPE m [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
        <methodCall><methodName>&xxe;</methodName></methodCall>
        """
        #expect(callError(file) == .doctypeForbidden)
        let url = "<!DOCTYPE m SYSTEM \"http://192.0.2.1/evil.dtd\"><methodCall><methodName>x</methodName></methodCall>"
        #expect(callError(url) == .doctypeForbidden)
        let parameter = "<!DOCTYPE m [<!ENTITY % p SYSTEM \"file:///etc/shadow\"> %p;]><methodCall/>"
        #expect(callError(parameter) == .doctypeForbidden)
        #expect(callError("<!doctype m><methodCall/>") == .doctypeForbidden)
    }

    @Test("DOCTYPE text inside CDATA or a comment is data, not a declaration")
    func doctypeAsData() throws {
        let doc = response("<value><![CDATA[<!DOCTYPE x>]]></value>") + "<!-- <!DOCTYPE y> -->"
        #expect(try decoder.decodeMethodResponse(doc) == .success(.string("<!DOCTYPE x>")))
    }

    @Test("deep nesting stops at the depth limit without exhausting the stack")
    func deepNesting() {
        let depth = 50_000
        let doc = response(String(repeating: "<value><array><data>", count: depth) + String(repeating: "</data></array></value>", count: depth))
        #expect(responseError(doc) == .nestingTooDeep(limit: 64))
        // Within the limit it decodes: 19 levels of array plus the 3 wrapper elements.
        let shallow = response(String(repeating: "<value><array><data>", count: 19) + "<value>x</value>" + String(repeating: "</data></array></value>", count: 19))
        #expect(responseError(shallow) == nil)
        let strict = XMLRPCDecoder(limits: XMLRPCLimits(maxDepth: 5))
        #expect(throws: XMLRPCError.nestingTooDeep(limit: 5)) { try strict.decodeMethodResponse(shallow) }
    }

    @Test("a 5 MiB document is refused by size, as text and as bytes")
    func oversize() {
        let big = response("<value>" + String(repeating: "A", count: 5 << 20) + "</value>")
        let size = big.utf8.count
        #expect(responseError(big) == .documentTooLarge(size: size, limit: 4 << 20))
        #expect(throws: XMLRPCError.documentTooLarge(size: size, limit: 4 << 20)) {
            try decoder.decodeMethodResponse(Data(big.utf8))
        }
        // Just under the limit is fine.
        let fits = response("<value>" + String(repeating: "A", count: (4 << 20) - 200) + "</value>")
        #expect(responseError(fits) == nil)
    }

    @Test("truncated and ill-formed XML is malformed")
    func truncated() {
        let full = response("<value><struct><member><name>a</name><value>b</value></member></struct></value>")
        for cut in [1, 10, 40, full.count / 2, full.count - 1] {
            let error = responseError(String(full.prefix(cut)))
            guard case .malformedXML = error else {
                Issue.record("prefix \(cut): expected malformedXML, got \(String(describing: error))")
                continue
            }
        }
        for bad in ["<methodResponse></params>", "<methodResponse><params>", "not xml at all", "<a>&undefined;</a>",
                    "<methodResponse/><methodResponse/>", "<m>\u{1}</m>", "<methodResponse attr=>"] {
            guard case .malformedXML = responseError(bad) else {
                Issue.record("\(bad.debugDescription): expected malformedXML, got \(String(describing: responseError(bad)))")
                continue
            }
        }
        #expect(responseError("") == .emptyDocument)
        #expect(responseError(" \n\t") == .emptyDocument)
        guard case .malformedXML = responseError("<?xml version='1.0'?>") else {
            Issue.record("a declaration alone should be malformed")
            return
        }
    }

    @Test("wrong types give the typed error for that type")
    func wrongTypes() {
        #expect(responseError(response("<value><boolean>2</boolean></value>")) ==
            .invalidBoolean("2", path: "methodResponse/params/param[0]/boolean"))
        #expect(responseError(response("<value><boolean>true</boolean></value>")) ==
            .invalidBoolean("true", path: "methodResponse/params/param[0]/boolean"))
        #expect(responseError(response("<value><int>abc</int></value>")) ==
            .invalidInteger("abc", path: "methodResponse/params/param[0]/int"))
        #expect(responseError(response("<value><int></int></value>")) ==
            .invalidInteger("", path: "methodResponse/params/param[0]/int"))
        #expect(responseError(response("<value><i4>1.5</i4></value>")) ==
            .invalidInteger("1.5", path: "methodResponse/params/param[0]/i4"))
        #expect(responseError(response("<value><double>one</double></value>")) ==
            .invalidDouble("one", path: "methodResponse/params/param[0]/double"))
        #expect(responseError(response("<value><double>0x1p3</double></value>")) ==
            .invalidDouble("0x1p3", path: "methodResponse/params/param[0]/double"))
        #expect(responseError(response("<value><dateTime.iso8601>yesterday</dateTime.iso8601></value>")) ==
            .invalidDateTime("yesterday", path: "methodResponse/params/param[0]/dateTime.iso8601"))
        #expect(responseError(response("<value><nil>x</nil></value>")) ==
            .unexpectedText(path: "methodResponse/params/param[0]/nil"))
    }

    @Test("i4 and int values beyond 32 bits overflow")
    func integerOverflow() {
        #expect(responseError(response("<value><i4>2147483648</i4></value>")) ==
            .integerOverflow("2147483648", path: "methodResponse/params/param[0]/i4"))
        #expect(responseError(response("<value><int>-2147483649</int></value>")) ==
            .integerOverflow("-2147483649", path: "methodResponse/params/param[0]/int"))
        #expect(responseError(response("<value><i4>99999999999999999999999999</i4></value>")) ==
            .integerOverflow("99999999999999999999999999", path: "methodResponse/params/param[0]/i4"))
    }

    @Test("invalid base64 is refused")
    func invalidBase64() {
        for text in ["!!!!", "aGVsbG8", "a", "aGVs*G8="] {
            #expect(responseError(response("<value><base64>\(text)</base64></value>")) ==
                .invalidBase64(path: "methodResponse/params/param[0]/base64"))
        }
    }

    @Test("unknown and misplaced elements name the element and where it was")
    func unknownElements() {
        #expect(responseError(response("<value><i8>1</i8></value>")) ==
            .unexpectedElement("i8", path: "methodResponse/params/param[0]"))
        #expect(responseError("<methodResponse xmlns:ex=\"http://ws.apache.org/xmlrpc/namespaces/extensions\"><params><param><value><ex:nil/></value></param></params></methodResponse>") ==
            .unexpectedElement("ex:nil", path: "methodResponse/params/param[0]"))
        #expect(responseError(response("<value><string>a</string><string>b</string></value>")) ==
            .unexpectedElement("string", path: "methodResponse/params/param[0]"))
        #expect(responseError(response("<value>text<string>b</string></value>")) ==
            .unexpectedText(path: "methodResponse/params/param[0]"))
        #expect(responseError(response("<value><string><b>bold</b></string></value>")) ==
            .unexpectedElement("b", path: "methodResponse/params/param[0]/string"))
        #expect(responseError(response("<value><struct><value>x</value></struct></value>")) ==
            .unexpectedElement("value", path: "methodResponse/params/param[0]/struct"))
        #expect(responseError(response("<value><struct><member><name>a</name></member></struct></value>")) ==
            .missingElement("value", path: "methodResponse/params/param[0]/struct/member[a]"))
        #expect(responseError(response("<value><struct><member><value>x</value><name>a</name></member></struct></value>")) ==
            .missingElement("name", path: "methodResponse/params/param[0]/struct/member"))
        #expect(responseError(response("<value><struct><member><name>a</name><value>1</value></member><member><name>a</name><value>2</value></member></struct></value>")) ==
            .duplicateMember("a", path: "methodResponse/params/param[0]/struct"))
        #expect(responseError(response("<value><array><value>x</value></array></value>")) ==
            .unexpectedElement("value", path: "methodResponse/params/param[0]/array"))
        #expect(responseError(response("<value><array/></value>")) ==
            .missingElement("data", path: "methodResponse/params/param[0]/array"))
        #expect(responseError(response("<string>x</string>")) ==
            .unexpectedElement("string", path: "methodResponse/params/param[0]"))
        #expect(callError("<methodCall><params/></methodCall>") == .missingElement("methodName", path: "methodCall"))
        #expect(callError("<methodCall><methodName>a</methodName><methodName>b</methodName></methodCall>") ==
            .unexpectedElement("methodName", path: "methodCall"))
        #expect(callError("<methodResponse/>") == .unexpectedRoot(expected: "methodCall", found: "methodResponse"))
        #expect(responseError("<methodCall/>") == .unexpectedRoot(expected: "methodResponse", found: "methodCall"))
    }

    @Test("responses must carry exactly one param or a well-formed fault")
    func responseShape() {
        #expect(responseError("<methodResponse><params/></methodResponse>") == .wrongParamCount(expected: 1, found: 0))
        #expect(responseError("<methodResponse><params><param><value/></param><param><value/></param></params></methodResponse>") ==
            .wrongParamCount(expected: 1, found: 2))
        #expect(responseError("<methodResponse/>") == .missingElement("params", path: "methodResponse"))
        #expect(responseError("<methodResponse><fault><value>x</value></fault></methodResponse>") ==
            .invalidFault("expected a struct, found string"))
        #expect(responseError("<methodResponse><fault><value><struct><member><name>faultCode</name><value>1</value></member></struct></value></fault></methodResponse>") ==
            .invalidFault("member faultCode has type string"))
        #expect(responseError("<methodResponse><fault><value><struct><member><name>faultCode</name><value><int>1</int></value></member></struct></value></fault></methodResponse>") ==
            .invalidFault("missing faultString"))
    }

    @Test("non-UTF-8 documents are refused")
    func encodings() {
        #expect(callError("<?xml version='1.0' encoding='UTF-7'?><methodCall/>") == .unsupportedEncoding("declared encoding utf-7"))
        #expect(callError("<?xml version=\"1.0\" encoding=\"utf-16\"?><methodCall/>") == .unsupportedEncoding("declared encoding utf-16"))
        #expect(callError("<methodCall>\u{0}</methodCall>") == .unsupportedEncoding("NUL byte"))
        var utf16 = Data([0xFF, 0xFE])
        utf16.append("<methodCall/>".data(using: .utf16LittleEndian)!)
        #expect(throws: XMLRPCError.unsupportedEncoding("UTF-16 or UTF-32 byte order mark")) {
            try decoder.decodeMethodCall(utf16)
        }
    }

    @Test("errors describe themselves")
    func descriptions() {
        #expect(XMLRPCError.integerOverflow("9", path: "p").description == "integer \"9\" does not fit in 32 bits in p")
        #expect(XMLRPCError.doctypeForbidden.description.contains("DOCTYPE"))
    }
}
