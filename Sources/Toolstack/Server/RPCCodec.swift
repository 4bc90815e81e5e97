import Foundation
import XenAPIWire

/// The two wire forms of a XenAPI call: XML-RPC (`POST /`) and JSON-RPC (`POST /jsonrpc`),
/// each answered as xapi shapes it (`{Status: Success, Value}` / `{Status: Failure, ErrorDescription}`
/// for XML-RPC; `result` / `error {code, message, data}` for JSON-RPC).
public enum RPCCodec {
    /// Decodes an XML-RPC request body; a failure is answered, not thrown.
    public static func decodeXML(_ body: [UInt8]) -> Result<XMLRPCMethodCall, APIFailure> {
        do { return .success(try XMLRPCDecoder().decodeMethodCall(Data(body))) } catch {
            return .failure(APIFailure("XMLRPC_UNMARSHAL_FAILURE", "\(error)"))
        }
    }

    /// The XML-RPC response body for an outcome.
    public static func encodeXML(_ outcome: Result<XMLRPCValue, APIFailure>) -> [UInt8] {
        let value: XMLRPCValue
        switch outcome {
        case .success(let v):
            value = .struct([XMLRPCMember("Status", "Success"), XMLRPCMember("Value", v)])
        case .failure(let f):
            value = .struct([XMLRPCMember("Status", "Failure"),
                             XMLRPCMember("ErrorDescription", .array(f.errorDescription.map { .string($0) }))])
        }
        return Array(XMLRPCEncoder(style: .xapi).encode(XMLRPCMethodResponse.success(value)).utf8)
    }

    /// A decoded JSON-RPC request: method, params and id (nil for notifications and bad requests).
    public struct JSONRequest {
        /// The method.
        public var method: String
        /// The parameters, as XML-RPC values.
        public var params: [XMLRPCValue]
        /// The request id, echoed in the answer.
        public var id: Any?
        /// The version (`2.0` or absent for 1.0).
        public var version: String?
    }

    /// Decodes a JSON-RPC request body.
    public static func decodeJSON(_ body: [UInt8]) -> Result<JSONRequest, APIFailure> {
        guard let object = (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any],
              let method = object["method"] as? String else {
            return .failure(APIFailure("JSONRPC_UNMARSHAL_FAILURE", "not a JSON-RPC request"))
        }
        let params = (object["params"] as? [Any] ?? []).map(JSONValue.decode)
        return .success(JSONRequest(method: method, params: params, id: object["id"], version: object["jsonrpc"] as? String))
    }

    /// The JSON-RPC response body for an outcome (v2 `error {code: 1, message, data}` as xapi answers).
    public static func encodeJSON(_ outcome: Result<XMLRPCValue, APIFailure>, id: Any?, version: String?,
                                  json: (XMLRPCValue) -> Any = JSONValue.encode) -> [UInt8] {
        var object: [String: Any] = ["id": id ?? NSNull()]
        if let version { object["jsonrpc"] = version }
        switch outcome {
        case .success(let v):
            object["result"] = json(v)
            if version == nil { object["error"] = NSNull() }
        case .failure(let f):
            if version == "2.0" {
                object["error"] = ["code": 1, "message": f.code, "data": Array(f.errorDescription.dropFirst())] as [String: Any]
            } else {
                object["error"] = f.errorDescription
                object["result"] = NSNull()
            }
        }
        return Array((try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8))
    }
}
