import CNBD

/// A failure of the NBD client: what was being done and libnbd's message.
public struct NBDClientError: Error, CustomStringConvertible, Sendable {
    /// The operation and libnbd's explanation.
    public let description: String

    /// A failure described by `description`.
    public init(description: String) { self.description = description }

    /// The error libnbd recorded for this thread's last call, for operation `what`.
    static func last(_ what: String) -> NBDClientError {
        let message = nbd_get_error().map { String(cString: $0) } ?? "unknown error"
        return NBDClientError(description: "\(what): \(message)")
    }
}
