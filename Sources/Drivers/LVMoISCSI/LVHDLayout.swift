/// The names and fixed sizes of an LVHD SR as the Python SM lays it out (`lvhdutil`, `lvutil`,
/// `journaler`), so that an SR made by either attaches on the other.
public enum LVHDLayout {
    /// Text before the SR uuid in the VG name.
    public static let vgPrefix = "VG_XenStorage-"
    /// The SR metadata LV.
    public static let managementVolume = "MGT"
    /// Bytes of the MGT LV (the Python SM makes it 4 MiB).
    public static let managementVolumeSize: UInt64 = 4 << 20
    /// Extent size in 512-byte sectors: 4 MiB, vgcreate's default and `LVM_SIZE_INCREMENT`.
    public static let extentSectors: UInt64 = 8192
    /// Bytes per extent.
    public static let extentBytes: UInt64 = extentSectors * 512
    /// Size of the PV's metadata area (the Python SM runs vgcreate with `--metadatasize 10M`).
    public static let metadataAreaSize: UInt64 = 10 << 20
    /// Tag of journal LVs (the Python SM's `journaler` tag).
    public static let journalTag = "journaler"
    /// Tag of the Python SM's VHD-resize journal LVs (`jvhd_<uuid>`).
    public static let vhdJournalTag = "jvhd"
    /// Tag of hidden raw LVs (hidden VHDs use their footer's hidden byte instead).
    public static let hiddenTag = "hidden"
    /// Tag of changed-block-tracking log LVs.
    public static let cbtLogTag = "cbtlog"
    /// Smallest journal LV (the Python SM's journal LVs are 4 MiB).
    public static let journalVolumeSize: UInt64 = 4 << 20
    /// Text before a journal entry's name in its LV's name.
    public static let journalPrefix = "journal-"

    /// `VG_XenStorage-<sr uuid>`.
    public static func vgName(sr: String) -> String { vgPrefix + sr }

    /// The SR uuid of an LVHD VG name, nil for other VGs.
    public static func srUUID(ofVG name: String) -> String? {
        name.hasPrefix(vgPrefix) ? String(name.dropFirst(vgPrefix.count)) : nil
    }

    /// The LV holding journal entry `name`.
    public static func journalVolume(_ name: String) -> String { journalPrefix + name }

    /// The journal entry an LV holds, nil for LVs that are not SwiftSM journals.
    public static func journalName(ofVolume lv: String) -> String? {
        lv.hasPrefix(journalPrefix) ? String(lv.dropFirst(journalPrefix.count)) : nil
    }
}
