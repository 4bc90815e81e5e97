/// How a container names the volumes of an SR: the VHD of a VDI, a volume being made, and a leaf
/// retired by a leaf coalesce. The repository and the collector ask for names and never build
/// them, so file SRs (`<uuid>.vhd`) and LVHD SRs (`VHD-<uuid>`) share their code.
public struct VolumeNaming: Sendable, Equatable {
    /// Text before the VDI uuid.
    public var prefix: String
    /// Text after the VDI uuid.
    public var suffix: String
    /// Text after the VDI uuid in the name of its CBT log.
    public var cbtLogSuffix: String

    /// Naming with `prefix` + uuid + `suffix`, CBT logs uuid + `cbtLogSuffix`.
    public init(prefix: String, suffix: String, cbtLogSuffix: String = ".cbtlog") {
        self.prefix = prefix
        self.suffix = suffix
        self.cbtLogSuffix = cbtLogSuffix
    }

    /// File SRs, as the Python SM's FileSR names them: `<uuid>.vhd`.
    public static let file = VolumeNaming(prefix: "", suffix: ".vhd")
    /// LVHD SRs, as the Python SM's LVHDSR names them: `VHD-<uuid>`.
    public static let lvhd = VolumeNaming(prefix: "VHD-", suffix: "")

    /// The volume holding VDI `uuid`'s VHD.
    public func volume(_ uuid: String) -> String { prefix + uuid + suffix }

    /// The VDI uuid of a VHD volume, nil for other volumes (journals, temporaries, strays).
    public func vdi(ofVolume name: String) -> String? {
        guard name.hasPrefix(prefix), name.hasSuffix(suffix), name.count == prefix.count + 36 + suffix.count else { return nil }
        let uuid = String(name.dropFirst(prefix.count).dropLast(suffix.count))
        return VDIName.isUUID(uuid) ? uuid : nil
    }

    /// The volume holding VDI `uuid`'s changed-block-tracking log (`<uuid>.cbtlog`, as the Python
    /// SM names it on file SRs and LVHD SRs alike; the LVM driver tags the LV `cbtlog`).
    public func cbtLog(_ uuid: String) -> String { uuid + cbtLogSuffix }

    /// The VDI uuid of a CBT log volume, nil for other volumes.
    public func vdi(ofCBTLog name: String) -> String? {
        guard name.hasSuffix(cbtLogSuffix), name.count == 36 + cbtLogSuffix.count else { return nil }
        let uuid = String(name.dropLast(cbtLogSuffix.count))
        return VDIName.isUUID(uuid) ? uuid : nil
    }

    /// The volume VDI `uuid`'s VHD is made in before it takes its name (atomically, by rename).
    public func temporary(_ uuid: String) -> String { volume(uuid) + ".new" }

    /// Whether `name` is a temporary volume (left by a crash: removed by recovery).
    public func isTemporary(_ name: String) -> Bool {
        name.hasSuffix(".new") && vdi(ofVolume: String(name.dropLast(4))) != nil
    }

    /// The name a leaf takes once a leaf coalesce has merged it into its parent (the mark that
    /// the merge is complete).
    public func retired(_ uuid: String) -> String { "OLD_" + volume(uuid) }
}
