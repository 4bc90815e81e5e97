/// A journal the Python SM's collector left behind when it was interrupted, read so that a
/// collector here can settle it: its LVM journaler names an entry `<type>_<vdi>_<value>` (or
/// `<type>_<vdi>_1` with `"<length> <value>"` inside, for long values), its file journaler
/// `<type>_<vdi>` holding the value. `coalesce` (the node's data was being merged into its
/// parent) and `relink` (the merge was complete, the node's children were being relinked to the
/// parent) hold `1`, which says nothing; `leaf` (a leaf coalesce) holds the parent's uuid.
public struct PythonGCJournal: Sendable, Equatable {
    /// What the Python SM's collector was doing.
    public enum Kind: String, Sendable, CaseIterable {
        /// Merging a hidden node into its parent.
        case coalesce
        /// Relinking a merged node's children to its parent.
        case relink
        /// Merging a leaf into its parent, which then takes the leaf's name.
        case leaf
    }

    /// What was interrupted.
    public let kind: Kind
    /// The node or leaf it was about.
    public let vdi: String
    /// The parent a leaf coalesce merged into (nil for the others: the node's parent is in its VHD).
    public let parent: String?

    /// The entry named `name` holding `value` (as the container reads it), or nil when it is not
    /// one of these.
    public init?(name: String, value: [UInt8]) {
        let parts = name.split(separator: "_", maxSplits: 2, omittingEmptySubsequences: false).map(String.init)
        guard parts.count >= 2, let kind = Kind(rawValue: parts[0]), VDIName.isUUID(parts[1]) else { return nil }
        self.kind = kind
        vdi = parts[1]
        if kind == .leaf {
            let text = String(decoding: value, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            guard VDIName.isUUID(text) else { return nil }
            parent = text
        } else {
            // Their value (`1`) says nothing: whatever the LV holds is not read into it. Our own
            // entries of these names hold JSON and a bare uuid in the name (no `_<value>`).
            guard parts.count == 3 || value == Array("1".utf8) else { return nil }
            parent = nil
        }
    }
}
