import Foundation

/// XenAPI object references: `OpaqueRef:<uuid>`, and `OpaqueRef:NULL` for none.
public enum ObjectRef {
    /// The null reference.
    public static let null = "OpaqueRef:NULL"

    /// A fresh reference.
    public static func make() -> String { "OpaqueRef:" + UUID().uuidString.lowercased() }

    /// A fresh lower-case uuid.
    public static func uuid() -> String { UUID().uuidString.lowercased() }
}
