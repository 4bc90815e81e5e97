/// A value of lvm2's config syntax: an integer, a string, an array of those, or a section.
public indirect enum ConfigValue: Equatable, Sendable {
    /// A decimal integer.
    case integer(Int64)
    /// A quoted string.
    case string(String)
    /// `[ v, v, ... ]` of integers and strings.
    case array([ConfigValue])
    /// `name { ... }`.
    case section([ConfigEntry])

    /// The integer, if this is one.
    public var integer: Int64? { if case let .integer(v) = self { return v }; return nil }
    /// The string, if this is one.
    public var string: String? { if case let .string(v) = self { return v }; return nil }
    /// The elements, if this is an array.
    public var array: [ConfigValue]? { if case let .array(v) = self { return v }; return nil }
    /// The entries, if this is a section.
    public var section: [ConfigEntry]? { if case let .section(v) = self { return v }; return nil }
}

/// One `key = value` or `key { ... }` of a section, in file order.
public struct ConfigEntry: Equatable, Sendable {
    /// The key or section name.
    public var key: String
    /// The value.
    public var value: ConfigValue

    /// An entry.
    public init(_ key: String, _ value: ConfigValue) {
        self.key = key
        self.value = value
    }
}

extension Array where Element == ConfigEntry {
    /// The first value under `key`.
    public subscript(key: String) -> ConfigValue? { first { $0.key == key }?.value }
}
