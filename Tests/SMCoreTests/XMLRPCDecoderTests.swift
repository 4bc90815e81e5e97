import Foundation
import Testing
@testable import SMCore

/// Accepted document forms: the value rules of Python's `xmlrpc.client` and xapi's reader.
@Suite struct XMLRPCDecoderTests {
    let decoder = XMLRPCDecoder()

    func value(_ inner: String) throws -> XMLRPCValue {
        try decoder.decodeMethodResponse("<methodResponse><params><param>\(inner)</param></params></methodResponse>").get()
    }

    @Test("string forms: bare text, <string>, <value/>, <string/>")
    func stringForms() throws {
        #expect(try value("<value>text</value>") == .string("text"))
        #expect(try value("<value><string>text</string></value>") == .string("text"))
        #expect(try value("<value/>") == .string(""))
        #expect(try value("<value></value>") == .string(""))
        #expect(try value("<value><string/></value>") == .string(""))
        #expect(try value("<value><string></string></value>") == .string(""))
        #expect(try value("<value>  padded  </value>") == .string("  padded  "))
        #expect(try value("<value><string> keep\n</string></value>") == .string(" keep\n"))
    }

    @Test("entities, character references, CDATA and UTF-8 decode to the same text")
    func entities() throws {
        #expect(try value("<value>&amp;&lt;&gt;&quot;&apos;</value>") == .string("&<>\"'"))
        #expect(try value("<value>&#233;&#xE9;é&#x1F600;😀</value>") == .string("ééé😀😀"))
        #expect(try value("<value><string><![CDATA[<raw> & ]]>x</string></value>") == .string("<raw> & x"))
        #expect(try value("<value>日本語 ✓</value>") == .string("日本語 ✓"))
        #expect(try value("<value>a\r\nb</value>") == .string("a\nb"))
    }

    @Test("whitespace, comments and processing instructions between elements are ignored")
    func whitespace() throws {
        let doc = """
        <?xml version="1.0" encoding="UTF-8"?>
        <!-- a comment -->
        <methodResponse>
          <params>
            <param>
              <value>
                <struct>
                  <member> <name>a</name> <value><i4> 7 </i4></value> </member>
                  <!-- between members -->
                  <member>
                    <name>b</name>
                    <value><array> <data> <value>x</value> <value><int>-1</int></value> </data> </array></value>
                  </member>
                </struct>
              </value>
            </param>
          </params>
        </methodResponse>

        """
        let expected: XMLRPCValue = .struct([XMLRPCMember("a", .int(7)), XMLRPCMember("b", ["x", .int(-1)])])
        #expect(try decoder.decodeMethodResponse(doc) == .success(expected))
    }

    @Test("scalar types")
    func scalars() throws {
        #expect(try value("<value><int>2147483647</int></value>") == .int(.max))
        #expect(try value("<value><i4>-2147483648</i4></value>") == .int(.min))
        #expect(try value("<value><i4>+5</i4></value>") == .int(5))
        #expect(try value("<value><boolean>1</boolean></value>") == .boolean(true))
        #expect(try value("<value><boolean>0</boolean></value>") == .boolean(false))
        #expect(try value("<value><double>-1.5e3</double></value>") == .double(-1500))
        #expect(try value("<value><double> 2 </double></value>") == .double(2))
        #expect(try value("<value><dateTime.iso8601>19700101T00:00:00Z</dateTime.iso8601></value>") == .dateTime("19700101T00:00:00Z"))
        #expect(try value("<value><dateTime.iso8601>2024-02-29T12:00:00+01:00</dateTime.iso8601></value>") == .dateTime("2024-02-29T12:00:00+01:00"))
        #expect(try value("<value><base64>aGVs\nbG8=\n</base64></value>") == .base64(Data("hello".utf8)))
        #expect(try value("<value><base64/></value>") == .base64(Data()))
        #expect(try value("<value><nil/></value>") == .nil)
    }

    @Test("method calls: name and parameters; <params> may be empty or absent")
    func methodCalls() throws {
        #expect(try decoder.decodeMethodCall("<methodCall><methodName>x.y</methodName><params/></methodCall>") ==
            XMLRPCMethodCall(methodName: "x.y", params: []))
        #expect(try decoder.decodeMethodCall("<methodCall><methodName>x</methodName></methodCall>").params.isEmpty)
        let call = try decoder.decodeMethodCall(Data("<methodCall><methodName>m</methodName><params><param><value>a</value></param><param><value><i4>1</i4></value></param></params></methodCall>".utf8))
        #expect(call == XMLRPCMethodCall(methodName: "m", params: ["a", .int(1)]))
    }

    @Test("fault responses")
    func faults() throws {
        let doc = "<methodResponse><fault><value><struct><member><name>faultString</name><value>boom</value></member><member><name>faultCode</name><value><int>38</int></value></member></struct></value></fault></methodResponse>"
        let response = try decoder.decodeMethodResponse(doc)
        #expect(response == .fault(XMLRPCFault(code: 38, string: "boom")))
        #expect(throws: XMLRPCFault(code: 38, string: "boom")) { try response.get() }
    }
}
