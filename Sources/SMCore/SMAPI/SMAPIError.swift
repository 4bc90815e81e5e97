/// An SMAPIv1 error as a driver reports it: a code of the SM error table and optional detail,
/// turned into the fault the Python SM prints (`xs_errors.XenError(name, opterr)`).
public struct SMAPIError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The fault code.
    public let code: Int32
    /// The table name of the code (`GenericException` for 1200, empty for a code not in the table).
    public let name: String
    /// The text before any detail: the table message, or the whole text of a generic exception.
    public let message: String
    /// The detail appended as ` [opterr=<detail>]`, if any (an empty detail is still appended).
    public let opterr: String?

    /// The error for table entry `entry`, with optional detail.
    public init(_ entry: SMErrorCode, opterr: String? = nil) {
        self.init(code: entry.code, name: entry.name, message: entry.message, opterr: opterr)
    }

    /// The error the Python SM raises for key `name`; an unknown key gives, as in `xs_errors`,
    /// code 1 with `Error reporting error, unknown key <name>` and the detail dropped.
    public init(named name: String, opterr: String? = nil) {
        if let entry = SMErrorCatalogue.entry(named: name) {
            self.init(entry, opterr: opterr)
        } else {
            self.init(code: 1, name: SMErrorCode.InvalidArg.name,
                      message: "Error reporting error, unknown key \(name)", opterr: nil)
        }
    }

    /// An error with every field given explicitly.
    public init(code: Int32, name: String, message: String, opterr: String?) {
        self.code = code
        self.name = name
        self.message = message
        self.opterr = opterr
    }

    /// Fault 1200 whose whole `faultString` is `text`, as the Python SM reports an unexpected
    /// exception (`Fault(1200, str(e))`).
    public static func generic(_ text: String) -> SMAPIError {
        SMAPIError(code: SMErrorCode.GenericException.code, name: SMErrorCode.GenericException.name,
                   message: text, opterr: nil)
    }

    /// Recovers the error from a fault read off a driver's stdout, splitting off the detail when
    /// `faultString` is the table message followed by ` [opterr=…]`.
    public init(fault: XMLRPCFault) {
        let entry = SMErrorCatalogue.entry(code: fault.code)
        let name = entry?.name ?? ""
        if let entry, entry.code != SMErrorCode.GenericException.code {
            let prefix = entry.message + " [opterr="
            if fault.string == entry.message {
                self.init(code: fault.code, name: name, message: entry.message, opterr: nil)
                return
            }
            let bytes = Array(fault.string.utf8), head = Array(prefix.utf8)
            if bytes.count > head.count, bytes.starts(with: head), bytes.last == UInt8(ascii: "]") {
                let detail = String(decoding: bytes[head.count..<(bytes.count - 1)], as: UTF8.self)
                self.init(code: fault.code, name: name, message: entry.message, opterr: detail)
                return
            }
        }
        self.init(code: fault.code, name: name, message: fault.string, opterr: nil)
    }

    /// The table entry of this error's code, if the code is in the table.
    public var entry: SMErrorCode? { SMErrorCatalogue.entry(code: code) }

    /// `message`, followed by ` [opterr=<detail>]` when there is detail (exactly as `xs_errors`).
    public var faultString: String {
        guard let opterr else { return message }
        return message + " [opterr=" + opterr + "]"
    }

    /// The XML-RPC fault carrying this error.
    public var fault: XMLRPCFault { XMLRPCFault(code: code, string: faultString) }

    /// `<code> <name>: <faultString>`.
    public var description: String { "\(code) \(name): \(faultString)" }
}
