/// Bounds the XML-RPC decoder enforces before and while parsing a document.
public struct XMLRPCLimits: Sendable, Hashable {
    /// The largest document accepted, in bytes.
    public var maxDocumentBytes: Int
    /// The deepest element nesting accepted (the root element is depth 1).
    public var maxDepth: Int

    /// Limits with the given bounds; the defaults suit SMAPIv1 (4 MiB, 64 levels).
    public init(maxDocumentBytes: Int = 4 << 20, maxDepth: Int = 64) {
        self.maxDocumentBytes = maxDocumentBytes
        self.maxDepth = maxDepth
    }

    /// The default limits: 4 MiB and 64 levels of element nesting.
    public static let `default` = XMLRPCLimits()
}
