import Foundation

/// A journal entry of the collector, kept in the SR's container like the snapshot journal, named
/// as the Python SM names its journals (`<type>_<uuid>`) and holding `{"vdi", "parent"}` as JSON.
public enum GCJournal: Sendable, Equatable {
    /// A hidden node's data is being merged into its parent (informational: an interrupted merge
    /// needs no undo, the node still shadows every sector written into the parent).
    case coalesce(node: String, parent: String)
    /// The merge of `node` into `parent` is complete: its children must be relinked to `parent`
    /// and the node removed.
    case relink(node: String, parent: String)
    /// Leaf `vdi` is being merged into `parent`, which then takes the leaf's name; the leaf renamed
    /// to `OLD_<vdi>` marks the merge as complete.
    case leaf(vdi: String, parent: String)

    /// The entry's name in the container.
    public var name: String {
        switch self {
        case let .coalesce(n, _): "coalesce_" + n
        case let .relink(n, _): "relink_" + n
        case let .leaf(v, _): "leaf_" + v
        }
    }

    /// The VDI the entry is about and its parent.
    public var subject: (vdi: String, parent: String) {
        switch self {
        case let .coalesce(n, p), let .relink(n, p), let .leaf(n, p): (n, p)
        }
    }

    struct Body: Codable { var vdi: String; var parent: String }

    /// JSON bytes.
    public func encoded() -> [UInt8] {
        let s = subject
        return Array(try! JSONEncoder().encode(Body(vdi: s.vdi, parent: s.parent)))
    }

    /// Whether `name` is a collector journal name.
    public static func owns(_ name: String) -> Bool {
        ["coalesce_", "relink_", "leaf_"].contains { name.hasPrefix($0) }
    }

    /// Decodes an entry; nil for other journals or a damaged body.
    public init?(name: String, bytes: [UInt8]) {
        guard let b = try? JSONDecoder().decode(Body.self, from: Data(bytes)),
              VDIName.isUUID(b.vdi), VDIName.isUUID(b.parent) else { return nil }
        if name == "coalesce_" + b.vdi { self = .coalesce(node: b.vdi, parent: b.parent) }
        else if name == "relink_" + b.vdi { self = .relink(node: b.vdi, parent: b.parent) }
        else if name == "leaf_" + b.vdi { self = .leaf(vdi: b.vdi, parent: b.parent) }
        else { return nil }
    }
}
