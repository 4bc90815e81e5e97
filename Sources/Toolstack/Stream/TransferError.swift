/// Why a transfer failed: its connection, or the local file it reads or writes.
enum TransferError: Error, CustomStringConvertible {
    /// The client went away or the socket failed.
    case connection(String)
    /// The local file failed.
    case file(String)

    /// What happened.
    var description: String {
        switch self {
        case .connection(let why): return "the HTTP connection failed: \(why)"
        case .file(let why): return why
        }
    }
}
