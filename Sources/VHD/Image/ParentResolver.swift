/// Finds the parent of a differencing image from its locators, as blktap does: slots in order,
/// relative paths taken from the child's folder, the first that exists wins; then the parent
/// name field as a last resort.
public enum ParentResolver {
    /// Largest locator payload read (a path, not a blob).
    static let maxLocatorBytes: UInt32 = 64 * 1024

    /// Decoded (code, path) of every known locator of `image`, in slot order.
    public static func locatorPaths(of image: VHDImage) throws -> [(code: ParentLocator.Code, path: String)] {
        guard let h = image.header else { return [] }
        var out: [(ParentLocator.Code, String)] = []
        for (slot, l) in h.locators.enumerated() where l.rawCode != 0 {
            guard let code = l.code else {
                throw VHDError.invalidLocator(path: image.path, reason: "slot \(slot) has unknown code 0x\(String(l.rawCode, radix: 16))")
            }
            guard code == .macx || code == .w2ku || code == .w2ru || code == .wi2k || code == .wi2r else { continue }
            guard l.dataLength > 0, l.dataLength <= maxLocatorBytes else {
                throw VHDError.invalidLocator(path: image.path, reason: "slot \(slot) has length \(l.dataLength)")
            }
            let data = try image.store.read(count: Int(l.dataLength), at: l.dataOffset)
            guard let p = ParentLocator.path(code: code, data: data), !p.isEmpty else {
                throw VHDError.invalidLocator(path: image.path, reason: "slot \(slot) does not decode")
            }
            out.append((code, p))
        }
        return out
    }

    /// The path of `image`'s parent within `provider`, or `parentNotFound` with every candidate.
    public static func resolve(_ image: VHDImage, provider: any StoreProvider) throws -> String {
        let dir = StorePath.directory(of: image.path)
        var tried: [String] = []
        for (_, p) in try locatorPaths(of: image) {
            let candidate = StorePath.join(dir, p)
            if provider.exists(candidate) { return candidate }
            if !tried.contains(candidate) { tried.append(candidate) }
        }
        if let name = image.header?.parentName, !name.isEmpty, !name.contains("/") {
            let candidate = StorePath.join(dir, name)
            if provider.exists(candidate) { return candidate }
            if !tried.contains(candidate) { tried.append(candidate) }
        }
        throw VHDError.parentNotFound(path: image.path, tried: tried)
    }
}
