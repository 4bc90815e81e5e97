/// Typing of JSON-RPC results: a field getter's result travels with its field's type (ints as numbers).
extension XenAPIService {
    /// The type of `method`'s result when it is a field getter, else nil.
    func resultKind(_ method: String) -> FieldKind? {
        let name = method.hasPrefix("Async.") ? String(method.dropFirst(6)) : method
        let parts = name.split(separator: ".", maxSplits: 1).map(String.init)
        guard parts.count == 2, parts[1].hasPrefix("get_"), let spec = DataModel.spec(parts[0]) else { return nil }
        return spec.field(String(parts[1].dropFirst(4)))?.kind
    }
}
