import Foundation
import NIOHTTP1

/// The HTTP transfer URIs of xapi that toolstackd serves.
enum TransferRoute: Equatable {
    /// `GET /export_raw_vdi`.
    case exportVDI
    /// `PUT /import_raw_vdi`.
    case importVDI

    /// The route of a request head, nil for any other request.
    init?(_ head: HTTPRequestHead) {
        let path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? ""
        switch (head.method, path) {
        case (.GET, "/export_raw_vdi"), (.HEAD, "/export_raw_vdi"): self = .exportVDI
        case (.PUT, "/import_raw_vdi"), (.POST, "/import_raw_vdi"): self = .importVDI
        default: return nil
        }
    }
}

/// What a transfer request carries: its arguments (from the query, or cookies as xapi also
/// reads them), its credentials and the transport it came over.
struct TransferRequest: Sendable {
    /// The arguments: `vdi`, `session_id`, `task_id`, `format`, `base`, ...
    var arguments: [String: String]
    /// `user:password` from a Basic Authorization header.
    var basicCredentials: (user: String, password: String)?
    /// The body's length, when the client said it.
    var contentLength: UInt64?
    /// Whether only the headers are wanted (HEAD).
    var headOnly: Bool
    /// Whether the client waits for `100 Continue` before it sends the body.
    var expectsContinue: Bool
    /// Where the request came from.
    var transport: Transport

    /// The request of `head`, received over `transport`.
    init(head: HTTPRequestHead, transport: Transport) {
        var arguments: [String: String] = [:]
        for cookie in head.headers["Cookie"].flatMap({ $0.split(separator: ";") }) {
            let pair = cookie.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            if pair.count == 2 { arguments[pair[0]] = pair[1].removingPercentEncoding ?? pair[1] }
        }
        for item in URLComponents(string: head.uri)?.queryItems ?? [] { arguments[item.name] = item.value ?? "" }
        self.arguments = arguments
        if let auth = head.headers["Authorization"].first, auth.lowercased().hasPrefix("basic "),
           let data = Data(base64Encoded: String(auth.dropFirst(6)).trimmingCharacters(in: .whitespaces)),
           let text = String(data: data, encoding: .utf8), let colon = text.firstIndex(of: ":") {
            basicCredentials = (String(text[..<colon]), String(text[text.index(after: colon)...]))
        }
        contentLength = head.headers["Content-Length"].first.flatMap { UInt64($0) }
        headOnly = head.method == .HEAD
        expectsContinue = head.headers["Expect"].contains { $0.lowercased() == "100-continue" }
        self.transport = transport
    }
}
