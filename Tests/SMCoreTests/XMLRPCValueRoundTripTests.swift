import Foundation
import Testing
@testable import SMCore

/// Every value type survives encode → decode in both layouts, and each layout's bytes are exact.
@Suite struct XMLRPCValueRoundTripTests {
    static let samples: [XMLRPCValue] = [
        .string(""), .string("plain"), .string("  spaced  "), .string("a & b < c > d \" e ' f"),
        .string("ünïcødé ✓ 😀 日本語"), .string("line1\nline2\ttab"),
        .int(0), .int(42), .int(-7), .int(Int32.max), .int(Int32.min),
        .boolean(true), .boolean(false),
        .double(0), .double(-0.5), .double(3.141592653589793), .double(1e100), .double(-2.5e-10), .double(12345678.0),
        .dateTime("19700101T00:00:00Z"), .dateTime("20240229T23:59:59"),
        .base64(Data()), .base64(Data("hello".utf8)), .base64(Data((0..<200).map { UInt8($0) })),
        .nil,
        .struct([]), .array([]),
        .struct([XMLRPCMember("b", "1"), XMLRPCMember("a", .int(2)), XMLRPCMember("", .string(""))]),
        .array([.string("x"), .int(1), .nil, .array([.struct([XMLRPCMember("k", .boolean(true))])])]),
    ]

    @Test("values round-trip through the Python layout", arguments: samples)
    func pythonRoundTrip(_ value: XMLRPCValue) throws {
        let text = XMLRPCEncoder(style: .python).encode(.success(value))
        let decoded = try XMLRPCDecoder().decodeMethodResponse(text)
        #expect(decoded == .success(value))
    }

    @Test("values round-trip through the xapi layout", arguments: samples)
    func xapiRoundTrip(_ value: XMLRPCValue) throws {
        let call = XMLRPCMethodCall(methodName: "echo", params: [value, .string("second")])
        let text = XMLRPCEncoder(style: .xapi).encode(call)
        #expect(!text.contains("\n") || value.stringValue?.contains("\n") == true)
        #expect(try XMLRPCDecoder().decodeMethodCall(text) == call)
    }

    @Test("standalone values decode from <value> documents")
    func standaloneValue() throws {
        let decoder = XMLRPCDecoder()
        for value in Self.samples {
            #expect(try decoder.decodeValue(XMLRPCEncoder(style: .xapi).encode(value)) == value)
            #expect(try decoder.decodeValue(XMLRPCEncoder(style: .python).encode(value)) == value)
        }
    }

    @Test("faults round-trip in both layouts")
    func faultRoundTrip() throws {
        let fault = XMLRPCFault(code: 46, string: "The VDI is not available [opterr=x & <y>]")
        for style in [XMLRPCStyle.python, .xapi] {
            let text = XMLRPCEncoder(style: style).encode(.fault(fault))
            #expect(try XMLRPCDecoder().decodeMethodResponse(text) == .fault(fault))
        }
    }

    @Test("Python layout writes each type as xmlrpc.client.dumps does")
    func pythonBytes() {
        let encoder = XMLRPCEncoder(style: .python)
        #expect(encoder.encode(.nil) == "<value><nil/></value>")
        #expect(encoder.encode(.int(-3)) == "<value><int>-3</int></value>\n")
        #expect(encoder.encode(.boolean(true)) == "<value><boolean>1</boolean></value>\n")
        #expect(encoder.encode(.string("")) == "<value><string></string></value>\n")
        #expect(encoder.encode(.string("a&b<c>\"d'")) == "<value><string>a&amp;b&lt;c&gt;\"d'</string></value>\n")
        #expect(encoder.encode(.dateTime("19700101T00:00:00")) ==
            "<value><dateTime.iso8601>19700101T00:00:00</dateTime.iso8601></value>\n")
        #expect(encoder.encode(.base64(Data("hi".utf8))) == "<value><base64>\naGk=\n</base64></value>\n")
        #expect(encoder.encode(.base64(Data())) == "<value><base64>\n</base64></value>\n")
        #expect(encoder.encode(.struct([])) == "<value><struct>\n</struct></value>\n")
        #expect(encoder.encode(.array([])) == "<value><array><data>\n</data></array></value>\n")
        #expect(encoder.encode(.array([.int(1), .nil])) ==
            "<value><array><data>\n<value><int>1</int></value>\n<value><nil/></value></data></array></value>\n")
        #expect(encoder.encode(.struct([XMLRPCMember("a<", "b")])) ==
            "<value><struct>\n<member>\n<name>a&lt;</name>\n<value><string>b</string></value>\n</member>\n</struct></value>\n")
        // base64.encodebytes: 76 characters per line, each line ending in a newline.
        let long = encoder.encode(.base64(Data(repeating: 0xFF, count: 60)))
        #expect(long == "<value><base64>\n" + String(repeating: "/", count: 76) + "\n" + String(repeating: "/", count: 4) + "\n</base64></value>\n")
        let call = encoder.encode(XMLRPCMethodCall(methodName: "m", params: [.int(1)]))
        #expect(call == "<?xml version='1.0'?>\n<methodCall>\n<methodName>m</methodName>\n<params>\n<param>\n<value><int>1</int></value>\n</param>\n</params>\n</methodCall>\n")
    }

    @Test("Python layout formats doubles like repr()")
    func pythonDoubles() {
        let cases: [(Double, String)] = [
            (0, "0.0"), (-0.0, "-0.0"), (1, "1.0"), (0.1, "0.1"), (-2.5, "-2.5"), (100, "100.0"),
            (1e16, "1e+16"), (9.5e15, "9500000000000000.0"), (1.5e16, "1.5e+16"), (123456789.125, "123456789.125"),
            (0.0001, "0.0001"), (0.00001, "1e-05"), (1.5e-7, "1.5e-07"), (1e100, "1e+100"), (.leastNonzeroMagnitude, "5e-324"),
            (Double.greatestFiniteMagnitude, "1.7976931348623157e+308"), (.infinity, "inf"), (-.infinity, "-inf"),
            (.nan, "nan"), (3.141592653589793, "3.141592653589793"),
        ]
        for (value, expected) in cases {
            #expect(PythonFloatFormat.repr(value) == expected, "repr(\(value))")
        }
    }

    @Test("xapi layout writes each type as XMLRPC.To + Xml.to_string do")
    func xapiBytes() {
        let encoder = XMLRPCEncoder(style: .xapi)
        #expect(encoder.encode(.string("")) == "<value/>")
        #expect(encoder.encode(.string("a\"b&c<d>e'\u{1}f")) == "<value>a&quot;b&amp;c&lt;d&gt;e'f</value>")
        #expect(encoder.encode(.int(5)) == "<value><i4>5</i4></value>")
        #expect(encoder.encode(.boolean(false)) == "<value><boolean>0</boolean></value>")
        #expect(encoder.encode(.double(0.1)) == "<value><double>0.1</double></value>")
        #expect(encoder.encode(.double(.nan)) == "<value><double>NaN</double></value>")
        #expect(encoder.encode(.struct([])) == "<value><struct/></value>")
        #expect(encoder.encode(.array([])) == "<value><array><data/></array></value>")
        #expect(encoder.encode(.struct([XMLRPCMember("k", "")])) == "<value><struct><member><name>k</name><value/></member></struct></value>")
        #expect(encoder.encode(XMLRPCMethodCall(methodName: "m", params: [])) == "<methodCall><methodName>m</methodName><params/></methodCall>")
        #expect(encoder.encode(.fault(XMLRPCFault(code: 1, string: "x"))) ==
            "<methodResponse><fault><value><struct><member><name>faultCode</name><value><i4>1</i4></value></member><member><name>faultString</name><value>x</value></member></struct></value></fault></methodResponse>")
    }
}
