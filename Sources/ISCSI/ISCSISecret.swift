/// A CHAP secret: held for the login and for nothing else. Its `description`, `debugDescription`
/// and reflection print `<secret>`, so that it never reaches a log line, an error's text or a
/// process's arguments by accident; only `withCString` hands the bytes out (to libiscsi).
public struct ISCSISecret: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible,
    CustomReflectable {
    private let value: String

    /// A secret holding `value`.
    public init(_ value: String) { self.value = value }

    /// Whether the secret is empty.
    public var isEmpty: Bool { value.isEmpty }

    /// `<secret>`, never the value.
    public var description: String { "<secret>" }

    /// `<secret>`, never the value.
    public var debugDescription: String { "<secret>" }

    /// Reflection shows no value either (`dump`, string interpolation of a containing type).
    public var customMirror: Mirror { Mirror(self, children: []) }

    /// Runs `body` with the secret as a C string (for libiscsi's CHAP setters only).
    public func withCString<T>(_ body: (UnsafePointer<CChar>) throws -> T) rethrows -> T {
        try value.withCString(body)
    }

    /// `text` with every occurrence of the secret replaced by `<secret>` (for messages that
    /// come from a library and might echo what it was given).
    public func redact(_ text: String) -> String {
        guard value.count >= 1, text.contains(value) else { return text }
        return text.replacingOccurrences(of: value, with: "<secret>")
    }
}
