import Foundation
import ISCSI
import SMCore

/// What `sr_probe` prints on stderr when `device-config` is partial, as the Python SM prints it
/// for XenCenter to parse: the targets the portals list (before fault 96) and the disks of a
/// target (before fault 107).
enum ISCSIProbeDocuments {
    /// `<iscsi-target-iqns>`: one `<TGT>` per target and address, numbered from 0.
    static func targets(_ targets: [ISCSIDiscoveredTarget]) -> String {
        var entries: [ProbeDocument.Entry] = []
        for t in targets {
            for a in t.addresses {
                entries.append(.init("TGT", [("Index", "\(entries.count)"), ("IPAddress", a.host), ("TargetIQN", t.iqn)]))
            }
        }
        return ProbeDocument.render(root: "iscsi-target-iqns", entries: entries)
    }

    /// `<iscsi-target>`: one `<LUN>` per disk (`vendor`, `serial`, `LUNid`, `size` in bytes, `SCSIid`).
    static func luns(_ disks: [ISCSILUNInfo]) -> String {
        ProbeDocument.render(root: "iscsi-target", entries: disks.map { d in
            .init("LUN", [("vendor", d.inquiry.vendor.trimmingCharacters(in: .whitespaces)), ("serial", d.serial), ("LUNid", "\(d.lun)"), ("size", "\(d.size)"),
                          ("SCSIid", d.scsiID)])
        })
    }

    /// The LUN's name as the Python SM lists it in `Devlist` (`/dev/disk/by-id/scsi-<SCSIid>`;
    /// no kernel device exists here, the name identifies the LUN).
    static func devicePath(_ scsiID: String) -> String { "/dev/disk/by-id/scsi-" + scsiID }
}
