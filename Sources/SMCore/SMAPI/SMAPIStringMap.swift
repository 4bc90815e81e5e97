/// An ordered string-to-string map as SMAPIv1 carries them (`device_config`, `sm_config`,
/// `driver_params`, `xenstore_data`): order is kept so documents re-encode byte for byte.
public struct SMAPIStringMap: Sendable, Hashable, Sequence, ExpressibleByDictionaryLiteral {
    /// One key and its value.
    public struct Entry: Sendable, Hashable {
        /// The key.
        public var key: String
        /// The value.
        public var value: String

        /// An entry mapping `key` to `value`.
        public init(key: String, value: String) {
            self.key = key
            self.value = value
        }
    }

    /// The entries in order; keys are unique.
    public private(set) var entries: [Entry]

    /// An empty map.
    public init() {
        entries = []
    }

    /// A map of `pairs` in order; a repeated key keeps its first position and its last value.
    public init<S: Sequence>(_ pairs: S) where S.Element == (String, String) {
        entries = []
        for (key, value) in pairs { self[key] = value }
    }

    /// A map from a literal, in the literal's order.
    public init(dictionaryLiteral elements: (String, String)...) {
        self.init(elements)
    }

    /// A map from an XML-RPC struct whose members are all strings, or nil for any other value.
    public init?(_ value: XMLRPCValue) {
        guard let members = value.structMembers else { return nil }
        var pairs: [(String, String)] = []
        for member in members {
            guard let text = member.value.stringValue else { return nil }
            pairs.append((member.name, text))
        }
        self.init(pairs)
    }

    /// The value for `key`; setting nil removes the key, setting a new key appends it.
    public subscript(key: String) -> String? {
        get { entries.first { $0.key == key }?.value }
        set {
            let index = entries.firstIndex { $0.key == key }
            switch (index, newValue) {
            case (let index?, let value?): entries[index].value = value
            case (let index?, nil): entries.remove(at: index)
            case (nil, let value?): entries.append(Entry(key: key, value: value))
            case (nil, nil): break
            }
        }
    }

    /// The keys in order.
    public var keys: [String] { entries.map(\.key) }

    /// The number of entries.
    public var count: Int { entries.count }

    /// True when there are no entries.
    public var isEmpty: Bool { entries.isEmpty }

    /// The entries as an unordered dictionary.
    public var dictionary: [String: String] {
        Dictionary(entries.map { ($0.key, $0.value) }, uniquingKeysWith: { _, last in last })
    }

    /// The map as an XML-RPC struct of strings, in order.
    public var xmlrpcValue: XMLRPCValue {
        .struct(entries.map { XMLRPCMember($0.key, .string($0.value)) })
    }

    /// Iterates over `(key, value)` pairs in order.
    public func makeIterator() -> IndexingIterator<[(key: String, value: String)]> {
        entries.map { (key: $0.key, value: $0.value) }.makeIterator()
    }
}
