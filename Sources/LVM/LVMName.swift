/// lvm2's rules for VG, LV and tag names.
public enum LVMName {
    /// Longest VG or LV name.
    public static let maxLength = 127
    /// Longest tag.
    public static let maxTagLength = 1024
    /// Substrings lvm2 reserves for hidden sub-LVs.
    static let reservedLVParts = ["_cdata", "_cmeta", "_corig", "_cpool", "_cvol", "_wcorig", "_mimage", "_mlog", "_rimage",
                                  "_rmeta", "_tdata", "_tmeta", "_vdata", "_imeta", "_iorig", "_pmspare", "_vorigin"]

    /// Whether `c` may appear in a VG or LV name.
    static func isNameByte(_ c: UInt8) -> Bool {
        (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a)
            || c == UInt8(ascii: "_") || c == UInt8(ascii: ".") || c == UInt8(ascii: "+") || c == UInt8(ascii: "-")
    }

    /// Throws unless `name` is a valid VG name.
    public static func checkVG(_ name: String) throws {
        let u = Array(name.utf8)
        guard !u.isEmpty, u.count <= maxLength, u.allSatisfy(isNameByte), u[0] != UInt8(ascii: "-"), name != ".", name != ".." else {
            throw LVMError.invalidName("VG name \"\(name)\"")
        }
    }

    /// Throws unless `name` is a valid LV name.
    public static func checkLV(_ name: String) throws {
        try checkVG(name)
        if name.hasPrefix("snapshot") || name.hasPrefix("pvmove") || reservedLVParts.contains(where: { name.contains($0) }) {
            throw LVMError.invalidName("LV name \"\(name)\" is reserved by lvm2")
        }
    }

    /// Throws unless `tag` is a valid tag (`[A-Za-z0-9_+.\-/=!:&#]`, 1-1024 characters).
    public static func checkTag(_ tag: String) throws {
        let u = Array(tag.utf8)
        let extra = Array("_+.-/=!:&#".utf8)
        guard !u.isEmpty, u.count <= maxTagLength,
              u.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5a) || ($0 >= 0x61 && $0 <= 0x7a) || extra.contains($0) }) else {
            throw LVMError.invalidName("tag \"\(tag)\"")
        }
    }
}
