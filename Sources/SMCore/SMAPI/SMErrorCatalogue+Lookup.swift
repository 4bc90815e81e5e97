/// Lookup of SM error table entries by name and by code.
extension SMErrorCatalogue {
    /// The entries keyed by name.
    private static let byName: [String: SMErrorCode] = Dictionary(uniqueKeysWithValues: entries.map { ($0.name, $0) })
    /// The entries keyed by code.
    private static let byCode: [Int32: SMErrorCode] = Dictionary(uniqueKeysWithValues: entries.map { ($0.code, $0) })

    /// The entry called `name` (the key the Python SM raises, e.g. `SRNoSpace`), if any.
    public static func entry(named name: String) -> SMErrorCode? { byName[name] }

    /// The entry with fault code `code`, if any.
    public static func entry(code: Int32) -> SMErrorCode? { byCode[code] }
}
