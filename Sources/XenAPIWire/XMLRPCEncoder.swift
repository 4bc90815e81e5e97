import Foundation

/// Encodes XML-RPC method calls, responses and values as text, byte for byte like Python's
/// `xmlrpc.client.dumps` or like xapi's serialiser, depending on `style`.
public struct XMLRPCEncoder: Sendable {
    /// The byte layout to produce.
    public var style: XMLRPCStyle

    /// An encoder producing `style` (Python's layout by default, which is what a driver prints).
    public init(style: XMLRPCStyle = .python) {
        self.style = style
    }

    /// The text of a `<methodCall>` document.
    public func encode(_ call: XMLRPCMethodCall) -> String {
        var out = ""
        switch style {
        case .python:
            out += "<?xml version='1.0'?>\n<methodCall>\n<methodName>"
            out += Self.escapePython(call.methodName)
            out += "</methodName>\n"
            writePythonParams(call.params, to: &out)
            out += "</methodCall>\n"
        case .xapi:
            out += "<methodCall>"
            out += call.methodName.isEmpty ? "<methodName/>" : "<methodName>\(Self.escapeXapi(call.methodName))</methodName>"
            if call.params.isEmpty {
                out += "<params/>"
            } else {
                out += "<params>"
                for param in call.params {
                    out += "<param>"
                    writeXapi(param, to: &out)
                    out += "</param>"
                }
                out += "</params>"
            }
            out += "</methodCall>"
        }
        return out
    }

    /// The text of a `<methodResponse>` document (one result, or a fault).
    public func encode(_ response: XMLRPCMethodResponse) -> String {
        var out = ""
        switch (style, response) {
        case (.python, .success(let value)):
            out += "<?xml version='1.0'?>\n<methodResponse>\n"
            writePythonParams([value], to: &out)
            out += "</methodResponse>\n"
        case (.python, .fault(let fault)):
            out += "<?xml version='1.0'?>\n<methodResponse>\n<fault>\n"
            writePython(Self.faultStruct(fault), to: &out)
            out += "</fault>\n</methodResponse>\n"
        case (.xapi, .success(let value)):
            out += "<methodResponse><params><param>"
            writeXapi(value, to: &out)
            out += "</param></params></methodResponse>"
        case (.xapi, .fault(let fault)):
            out += "<methodResponse><fault>"
            writeXapi(Self.faultStruct(fault), to: &out)
            out += "</fault></methodResponse>"
        }
        return out
    }

    /// The text of one `<value>` element (with its trailing newline in Python style).
    public func encode(_ value: XMLRPCValue) -> String {
        var out = ""
        switch style {
        case .python: writePython(value, to: &out)
        case .xapi: writeXapi(value, to: &out)
        }
        return out
    }

    /// The struct a fault is carried in: `faultCode`, then `faultString`.
    private static func faultStruct(_ fault: XMLRPCFault) -> XMLRPCValue {
        .struct([XMLRPCMember("faultCode", .int(fault.code)), XMLRPCMember("faultString", .string(fault.string))])
    }

    // MARK: - Python layout (xmlrpc.client.Marshaller)

    /// Writes `<params>` with one `<param>` per value, Python style.
    private func writePythonParams(_ params: [XMLRPCValue], to out: inout String) {
        out += "<params>\n"
        for param in params {
            out += "<param>\n"
            writePython(param, to: &out)
            out += "</param>\n"
        }
        out += "</params>\n"
    }

    /// Writes one value as `xmlrpc.client.Marshaller` does (every value but `<nil/>` ends a line).
    private func writePython(_ value: XMLRPCValue, to out: inout String) {
        switch value {
        case .nil:
            out += "<value><nil/></value>"
        case .int(let number):
            out += "<value><int>\(number)</int></value>\n"
        case .boolean(let flag):
            out += "<value><boolean>\(flag ? "1" : "0")</boolean></value>\n"
        case .double(let number):
            out += "<value><double>\(PythonFloatFormat.repr(number))</double></value>\n"
        case .string(let text):
            out += "<value><string>\(Self.escapePython(text))</string></value>\n"
        case .dateTime(let text):
            out += "<value><dateTime.iso8601>\(Self.escapePython(text))</dateTime.iso8601></value>\n"
        case .base64(let bytes):
            out += "<value><base64>\n\(Self.base64Lines(bytes))</base64></value>\n"
        case .array(let elements):
            out += "<value><array><data>\n"
            for element in elements { writePython(element, to: &out) }
            out += "</data></array></value>\n"
        case .struct(let members):
            out += "<value><struct>\n"
            for member in members {
                out += "<member>\n<name>\(Self.escapePython(member.name))</name>\n"
                writePython(member.value, to: &out)
                out += "</member>\n"
            }
            out += "</struct></value>\n"
        }
    }

    /// Python's `base64.encodebytes`: lines of at most 76 characters, each ending in a newline.
    private static func base64Lines(_ bytes: Data) -> String {
        let encoded = Array(bytes.base64EncodedString().utf8)
        var out = ""
        var start = 0
        while start < encoded.count {
            let end = min(start + 76, encoded.count)
            out += String(decoding: encoded[start..<end], as: UTF8.self) + "\n"
            start = end
        }
        return out
    }

    /// Python's `xmlrpc.client.escape` (`&`, `<`, `>`), also dropping characters XML 1.0
    /// cannot carry (Python would print them and produce a document no parser accepts).
    static func escapePython(_ text: String) -> String {
        // Most text (uuids, numbers, base64 bitmaps of megabytes) needs nothing: one pass over its bytes.
        if Self.isPlainASCII(text) { return text }
        var out = ""
        out.unicodeScalars.reserveCapacity(text.unicodeScalars.count)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            default:
                if isXMLCharacter(scalar) { out.unicodeScalars.append(scalar) }
            }
        }
        return out
    }

    /// Whether `text` is printable ASCII (or tab, LF, CR) without `&`, `<` or `>`: nothing to
    /// escape or drop.
    static func isPlainASCII(_ text: String) -> Bool {
        var copy = text
        return copy.withUTF8 { bytes in
            bytes.allSatisfy { b in
                (b >= 0x20 && b < 0x7F && b != UInt8(ascii: "&") && b != UInt8(ascii: "<") && b != UInt8(ascii: ">"))
                    || b == 0x09 || b == 0x0A || b == 0x0D
            }
        }
    }

    /// True for the characters XML 1.0 allows in a document.
    private static func isXMLCharacter(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x09, 0x0A, 0x0D: return true
        case 0x20...0xFFFD: return true
        case 0x10000...0x10FFFF: return true
        default: return false
        }
    }

    // MARK: - xapi layout (XMLRPC.To + Xml.to_string)

    /// Writes one value as `XMLRPC.To` builds it and `Xml.to_string` prints it.
    private func writeXapi(_ value: XMLRPCValue, to out: inout String) {
        switch value {
        case .nil:
            out += "<value><nil/></value>"
        case .int(let number):
            out += "<value><i4>\(number)</i4></value>"
        case .boolean(let flag):
            out += "<value><boolean>\(flag ? "1" : "0")</boolean></value>"
        case .double(let number):
            let text = number.isFinite ? String(format: "%0.16g", number) : "NaN"
            out += "<value><double>\(text)</double></value>"
        case .string(let text):
            out += text.isEmpty ? "<value/>" : "<value>\(Self.escapeXapi(text))</value>"
        case .dateTime(let text):
            out += "<value><dateTime.iso8601>\(Self.escapeXapi(text))</dateTime.iso8601></value>"
        case .base64(let bytes):
            out += "<value><base64>\(bytes.base64EncodedString())</base64></value>"
        case .array(let elements):
            if elements.isEmpty {
                out += "<value><array><data/></array></value>"
            } else {
                out += "<value><array><data>"
                for element in elements { writeXapi(element, to: &out) }
                out += "</data></array></value>"
            }
        case .struct(let members):
            if members.isEmpty {
                out += "<value><struct/></value>"
            } else {
                out += "<value><struct>"
                for member in members {
                    out += member.name.isEmpty ? "<member><name/>" : "<member><name>\(Self.escapeXapi(member.name))</name>"
                    writeXapi(member.value, to: &out)
                    out += "</member>"
                }
                out += "</struct></value>"
            }
        }
    }

    /// xml-light2's `esc_pcdata`: escapes `>`, `<`, `&`, `"` and drops control characters other
    /// than tab, line feed and carriage return.
    static func escapeXapi(_ text: String) -> String {
        var out = ""
        out.unicodeScalars.reserveCapacity(text.unicodeScalars.count)
        for scalar in text.unicodeScalars {
            switch scalar {
            case ">": out += "&gt;"
            case "<": out += "&lt;"
            case "&": out += "&amp;"
            case "\"": out += "&quot;"
            case "\t", "\n", "\r": out.unicodeScalars.append(scalar)
            default:
                if scalar.value >= 0x20 { out.unicodeScalars.append(scalar) }
            }
        }
        return out
    }
}
