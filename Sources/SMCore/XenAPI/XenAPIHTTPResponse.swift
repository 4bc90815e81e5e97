/// One HTTP/1.1 response read by the XenAPI client: status, headers and the de-chunked body.
struct XenAPIHTTPResponse: Sendable {
    /// The status code (`200`).
    var status: Int
    /// The reason phrase (`OK`).
    var reason: String
    /// The header fields in order, names as sent.
    var headers: [(name: String, value: String)]
    /// The body, with any chunked transfer coding removed.
    var body: [UInt8]
    /// Whether the connection may carry another request after this response.
    var keepAlive: Bool

    /// The value of the first header called `name` (case-insensitive).
    func header(_ name: String) -> String? {
        let lowered = name.lowercased()
        return headers.first { $0.name.lowercased() == lowered }?.value
    }
}
