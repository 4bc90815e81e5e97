/// Pointing a differencing image at a new parent (`vhd-util modify -p`): parent uuid,
/// timestamp, name and locators rewritten in place, in the same slots.
public enum Relink {
    /// Makes `child` a child of `newParent` (a VHD, or a raw file when `raw`).
    public static func run(child childPath: String, newParent: String, raw: Bool = false,
                           provider: any StoreProvider) throws {
        let child = try VHDImage(store: try provider.open(childPath, writable: true), path: childPath, writable: true)
        guard child.diskType == .differencing, let h = child.header else {
            throw VHDError.unsupported(path: childPath, reason: "not a differencing disk")
        }
        var uuid = VHDUUID.null
        if !raw {
            let p = try VHDImage(store: try provider.open(newParent, writable: false), path: newParent, writable: false,
                                 loadBAT: false)
            guard p.virtualSize <= child.virtualSize else {
                throw VHDError.invalidArgument("parent \(newParent) is larger than \(childPath)")
            }
            uuid = p.footer.uuid
        } else {
            guard provider.exists(newParent) else { throw VHDError.parentNotFound(path: childPath, tried: [newParent]) }
        }
        var rel = StorePath.relative(provider.canonical(newParent), from: provider.canonical(StorePath.directory(of: childPath)))
        if !rel.hasPrefix("../") { rel = "./" + rel }
        var locators = h.locators
        var payloads: [(UInt64, [UInt8])] = []
        for (i, l) in locators.enumerated() where l.rawCode != 0 {
            guard let code = l.code, code == .macx || code == .w2ku || code == .w2ru else { continue }
            let bytes = ParentLocator.payload(code: code, relativePath: rel)
            guard let space = l.spaceInBytes, UInt64(bytes.count) <= space else {
                throw VHDError.invalidLocator(path: childPath, reason: "slot \(i) has no room for \(rel)")
            }
            var padded = bytes
            padded.append(contentsOf: repeatElement(0, count: Int(space) - bytes.count))
            payloads.append((l.dataOffset, padded))
            locators[i].dataLength = UInt32(bytes.count)
        }
        guard !payloads.isEmpty else { throw VHDError.invalidLocator(path: childPath, reason: "no locator slot to rewrite") }
        // Locator data first, then the header that points at it and names the new uuid.
        for (at, bytes) in payloads { try child.store.write(bytes, at: at) }
        try child.updateHeader {
            $0.parentUUID = uuid
            $0.parentTimestamp = VHDTime.fromUnix(provider.modificationTime(newParent) ?? 0)
            $0.parentName = StorePath.basename(newParent)
            $0.locators = locators
        }
        try child.store.sync()
    }
}
