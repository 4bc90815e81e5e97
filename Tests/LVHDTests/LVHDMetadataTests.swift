import Foundation
import LVM
import LVMoISCSIDriver
import SMCore
import Testing
import VHD

/// `text` padded with spaces to one 512-byte sector, as the Python SM's `getSector` does.
private func sector(_ text: String) -> [UInt8] {
    let bytes = Array(text.utf8)
    return bytes + [UInt8](repeating: 0x20, count: 512 - bytes.count)
}

/// The `corruptMetadata` reason `body` fails with; nil when it succeeds or fails otherwise.
private func corruptReason(_ body: () throws -> Void) -> String? {
    do { try body() } catch let LVHDError.corruptMetadata(why) { return why } catch {}
    return nil
}

/// The raw bytes of the container's `MGT` LV store.
private func mgt(_ c: LVHDContainer) throws -> LogicalVolumeStore {
    try c.group.store(of: "MGT", in: c.group.current(), writable: true)
}

private let srUUID = "0c6cb5a2-5a5e-4e45-9a9e-3c3d2f0e0001"
private let vdiA = "11111111-2222-3333-4444-555555555555"
private let vdiB = "22222222-3333-4444-5555-666666666666"
private let vdiC = "33333333-4444-5555-6666-777777777777"
private let vdiD = "44444444-5555-6666-7777-888888888888"

@Suite("LVHD MGT metadata", .serialized)
struct LVHDMetadataTests {
    @Test("golden bytes: header, the three SR sectors and a VDI's two sectors, as srmetadata.py lays them out")
    func goldenBytes() throws {
        let m = LVHDMetadata(sr: .init(uuid: srUUID, nameLabel: "Local & <LVM>", nameDescription: "iSCSI \"lun\" 'x'", allocation: "thick"),
                             vdis: [.init(uuid: vdiA, nameLabel: "disk 0", nameDescription: "", type: "user", vdiType: "vhd")])
        let bytes = try m.encode()
        #expect(bytes.count == 3072)
        #expect(m.length == 3072)
        #expect(Array(bytes[0..<512]) == sector("XSSM:3072      :1:2"))
        #expect(Array(bytes[512..<1024]) == sector(#"<?xml version="1.0" ?><uuid>"# + srUUID + "</uuid><allocation>thick</allocation>"))
        #expect(Array(bytes[1024..<1536]) == sector("<name_label>Local &amp; &lt;LVM&gt;</name_label>"))
        #expect(Array(bytes[1536..<2048]) == sector("<name_description>iSCSI \"lun\" 'x'</name_description>"))
        #expect(Array(bytes[2048..<2560]) == sector("<vdi><name_label>disk 0</name_label><name_description></name_description>"))
        #expect(Array(bytes[2560..<3072]) == sector("<uuid>" + vdiA + "</uuid><is_a_snapshot>0</is_a_snapshot><snapshot_of></snapshot_of>"
            + "<snapshot_time></snapshot_time><type>user</type><vdi_type>vhd</vdi_type><read_only>0</read_only>"
            + "<managed>1</managed><metadata_of_pool></metadata_of_pool><deleted>0</deleted></vdi>"))
        // The length is left-justified in ten columns whatever its width.
        #expect(Array(try LVHDMetadata(sr: .init(uuid: srUUID)).encode()[0..<512]) == sector("XSSM:2048      :1:2"))
        #expect(try LVHDMetadata(decoding: bytes) == m)
    }

    @Test("a zeroed MGT (as SR create leaves it) reads as nil")
    func zeroedReadsNil() throws {
        let c = try LVHDContainer.create(on: blankDisk(64 << 20), sr: srUUID)
        #expect(try c.readMetadata() == nil)
        #expect(try LVHDMetadata.length(ofHeader: [UInt8](repeating: 0, count: 512)) == nil)
    }

    @Test("round trip through the MGT LV: SR info and several VDIs, read by a new container instance")
    func roundTrip() throws {
        let disk = blankDisk(64 << 20)
        let c = try LVHDContainer.create(on: disk, sr: srUUID)
        let m = LVHDMetadata(sr: .init(uuid: srUUID, nameLabel: "SR ☃", nameDescription: "made by SwiftSM", allocation: "thin"), vdis: [
            .init(uuid: vdiA, nameLabel: "root", nameDescription: "system disk", type: "system"),
            .init(uuid: vdiB, nameLabel: "snap", isASnapshot: true, snapshotOf: vdiA, snapshotTime: "20260101T10:20:30Z",
                  vdiType: "vhd", readOnly: true, managed: false),
            .init(uuid: vdiC, nameLabel: "pool metadata", type: "metadata", vdiType: "aio", metadataOfPool: vdiD),
        ])
        try c.writeMetadata(m)
        let again = try LVHDContainer(store: disk)
        let back = try #require(try again.readMetadata())
        #expect(back == m)
        #expect(back.vdis.map(\.uuid) == [vdiA, vdiB, vdiC])
        #expect(back.vdi(vdiB)?.snapshotOf == vdiA)
        #expect(back.vdi(vdiB)?.isASnapshot == true && back.vdi(vdiB)?.managed == false)
        let head = try mgt(again).read(count: 512, at: 0)
        #expect(head == sector("XSSM:5120      :1:2"))
    }

    @Test("delete marks the slot deleted and keeps the length; the next add reuses it; deleting the last slot shortens")
    func deleteThenAddReusesSlot() throws {
        let c = try LVHDContainer.create(on: blankDisk(64 << 20), sr: srUUID)
        try c.writeMetadata(LVHDMetadata(sr: .init(uuid: srUUID, nameLabel: "sr")))
        for u in [vdiA, vdiB, vdiC] { try c.updateVDI(.init(uuid: u, nameLabel: "vdi " + u.prefix(4))) }
        #expect(try mgt(c).read(count: 512, at: 0) == sector("XSSM:5120      :1:2"))

        try c.removeVDI(uuid: vdiB)
        var m = try #require(try c.readMetadata())
        #expect(m.vdis.map(\.uuid) == [vdiA, vdiC])
        #expect(m.slots.map(\.deleted) == [false, true, false])
        #expect(try mgt(c).read(count: 512, at: 0) == sector("XSSM:5120      :1:2"))
        let tomb = String(decoding: try mgt(c).read(count: 512, at: 3584), as: UTF8.self)
        #expect(tomb.hasPrefix("<uuid>\(vdiB)</uuid>") && tomb.contains("<deleted>1</deleted></vdi>"))

        try c.updateVDI(.init(uuid: vdiD, nameLabel: "new"))
        m = try #require(try c.readMetadata())
        #expect(m.slots.map(\.uuid) == [vdiA, vdiD, vdiC])
        #expect(m.vdis.count == 3)
        #expect(try mgt(c).read(count: 512, at: 0) == sector("XSSM:5120      :1:2"))

        // An update replaces in place.
        try c.updateVDI(.init(uuid: vdiA, nameLabel: "renamed"))
        m = try #require(try c.readMetadata())
        #expect(m.slots.map(\.uuid) == [vdiA, vdiD, vdiC] && m.vdi(vdiA)?.nameLabel == "renamed")

        // Removing the last slot gives it up; removing an unknown VDI changes nothing.
        try c.removeVDI(uuid: vdiC)
        try c.removeVDI(uuid: "99999999-0000-0000-0000-000000000000")
        m = try #require(try c.readMetadata())
        #expect(m.slots.map(\.uuid) == [vdiA, vdiD])
        #expect(try mgt(c).read(count: 512, at: 0) == sector("XSSM:4096      :1:2"))
    }

    @Test("long names are cut to fit their sector: at a character, never inside an entity")
    func truncation() throws {
        var m = LVHDMetadata(sr: .init(uuid: srUUID, nameLabel: String(repeating: "a", count: 600),
                                       nameDescription: String(repeating: "é", count: 300)))
        var bytes = try m.encode()
        // 512 − len("<name_label></name_label>") = 487 bytes of label; 475 of description (237 × 2 bytes).
        #expect(Array(bytes[1024..<1536]) == sector("<name_label>" + String(repeating: "a", count: 487) + "</name_label>"))
        #expect(Array(bytes[1536..<2048]) == sector("<name_description>" + String(repeating: "é", count: 237) + "</name_description>"))
        var back = try LVHDMetadata(decoding: bytes)
        #expect(back.sr.nameLabel == String(repeating: "a", count: 487))

        // An escaped `&` that would straddle the limit is dropped whole.
        m.sr.nameLabel = String(repeating: "b", count: 485) + "&x"
        bytes = try m.encode()
        #expect(Array(bytes[1024..<1536]) == sector("<name_label>" + String(repeating: "b", count: 485) + "</name_label>"))

        // A VDI's label and description share one sector: past 445 bytes, each longer than 222 is cut to 222.
        m.slots = [.init(uuid: vdiA, nameLabel: String(repeating: "L", count: 300), nameDescription: String(repeating: "D", count: 300)),
                   .init(uuid: vdiB, nameLabel: String(repeating: "L", count: 300), nameDescription: "short")]
        bytes = try m.encode()
        #expect(Array(bytes[2048..<2560]) == sector("<vdi><name_label>" + String(repeating: "L", count: 222) + "</name_label><name_description>"
            + String(repeating: "D", count: 222) + "</name_description>"))
        back = try LVHDMetadata(decoding: bytes)
        #expect(back.slots[1].nameLabel == String(repeating: "L", count: 300) && back.slots[1].nameDescription == "short")
    }

    @Test("XML escaping of &, <, > and quotes round-trips; other fields are escaped too")
    func escaping() throws {
        let label = #"a & b <c> "d" 'e' &amp; ]]>"#
        let m = LVHDMetadata(sr: .init(uuid: srUUID, nameLabel: label, nameDescription: "<name_label>x</name_label>"),
                             vdis: [.init(uuid: vdiA, nameLabel: label, nameDescription: "</vdi>", snapshotTime: "<t>")])
        let bytes = try m.encode()
        #expect(Array(bytes[1024..<1536]) == sector(#"<name_label>a &amp; b &lt;c&gt; "d" 'e' &amp;amp; ]]&gt;</name_label>"#))
        #expect(try LVHDMetadata(decoding: bytes) == m)
    }

    @Test("variants the Python SM may leave: stray <offset>, other field order, empty-element tags, NULs, \"True\"")
    func pythonVariants() throws {
        var bytes = try LVHDMetadata(sr: .init(uuid: srUUID, nameLabel: "sr"), vdis: [.init(uuid: vdiA)]).encode()
        var b = sector("<vdi><name_description>d &#233;&#xe9;</name_description><name_label>l</name_label>")
        b[510] = 0; b[511] = 0
        bytes.replaceSubrange(2048..<2560, with: b)
        bytes.replaceSubrange(2560..<3072, with: sector("<deleted>0</deleted><offset>2048</offset><managed>True</managed><snapshot_of/>"
            + "<uuid>\(vdiA)</uuid><type>user</type><vdi_type>vhd</vdi_type><read_only>0</read_only><is_a_snapshot>1</is_a_snapshot></vdi>"))
        let m = try LVHDMetadata(decoding: bytes)
        #expect(m.vdis == [.init(uuid: vdiA, nameLabel: "l", nameDescription: "d éé", isASnapshot: true, managed: true)])
    }

    @Test("corrupt or hostile MGT contents give corruptMetadata and leave the volume unchanged")
    func corruptInputs() throws {
        let c = try LVHDContainer.create(on: blankDisk(64 << 20), sr: srUUID)
        let good = LVHDMetadata(sr: .init(uuid: srUUID, nameLabel: "sr"), vdis: [.init(uuid: vdiA), .init(uuid: vdiB)])
        try c.writeMetadata(good)
        let store = try mgt(c)
        let pristine = try store.read(count: 8192, at: 0)
        let hostile: [(String, Int, [UInt8])] = [
            ("bad magic", 0, sector("XSSN:4096      :1:2")),
            ("five fields", 0, sector("XSSM:4096:1:2:3")),
            ("newer version", 0, sector("XSSM:4096      :2:0")),
            ("length past the LV", 0, sector("XSSM:9999872   :1:2")),
            ("length not whole slots", 0, sector("XSSM:4100      :1:2")),
            ("length before the slots", 0, sector("XSSM:512       :1:2")),
            ("negative length", 0, sector("XSSM:-1024     :1:2")),
            ("not UTF-8", 0, [0xFF, 0xFE] + sector("XSSM:4096      :1:2").dropLast(2)),
            ("no XML declaration", 512, sector("<uuid>\(srUUID)</uuid>")),
            ("SR without uuid", 512, sector(#"<?xml version="1.0" ?><allocation>thick</allocation>"#)),
            ("garbage XML", 3072, sector("<vdi><uuid>x</uid>")),
            ("unclosed vdi", 3584, sector("<uuid>\(vdiB)</uuid><deleted>0</deleted>")),
            ("two elements in a slot", 3072, sector("<vdi></vdi><vdi></vdi>")),
            ("attributes", 3584, sector("<uuid a=\"1\">x</uuid></vdi>")),
            ("unknown entity", 3584, sector("<uuid>&nbsp;</uuid></vdi>")),
            ("unterminated entity", 3584, sector("<uuid>&amp</uuid></vdi>")),
            ("bad flag", 3584, sector("<uuid>\(vdiB)</uuid><read_only>maybe</read_only></vdi>")),
            ("deep nesting", 3584, sector(String(repeating: "<a>", count: 100))),
            ("binary", 3072, pattern(512, seed: 3)),
        ]
        for (what, offset, bytes) in hostile {
            try store.write(pristine, at: 0)
            try store.write(bytes, at: UInt64(offset))
            let before = try store.read(count: 8192, at: 0)
            #expect(corruptReason { _ = try c.readMetadata() } != nil, "\(what)")
            #expect(try store.read(count: 8192, at: 0) == before, "\(what)")
            // A write replaces the corrupt contents; an update refuses to build on them.
            #expect(corruptReason { try c.updateVDI(.init(uuid: vdiC)) } != nil, "\(what)")
            #expect(try store.read(count: 8192, at: 0) == before, "\(what)")
        }
        // Bytes shorter than the header says, or than a header.
        let bytes = try good.encode()
        #expect(corruptReason { _ = try LVHDMetadata(decoding: Array(bytes.prefix(3584))) } != nil)
        #expect(corruptReason { _ = try LVHDMetadata(decoding: Array(bytes.prefix(100))) } != nil)
        #expect(corruptReason { _ = try LVHDMetadata(decoding: [UInt8](repeating: 0, count: 4096)) } != nil)
        try store.write(pristine, at: 0)
        #expect(try c.readMetadata() == good)
    }

    @Test("metadata larger than the 4 MiB MGT LV, or a field past its sector, is refused and nothing is written")
    func tooLarge() throws {
        let c = try LVHDContainer.create(on: blankDisk(64 << 20), sr: srUUID)
        let fits = LVHDMetadata(sr: .init(uuid: srUUID), vdis: (0..<4094).map { .init(uuid: String(format: "%036d", $0)) })
        #expect(try fits.encode().count == 4 << 20)
        var over = fits
        over.slots.append(.init(uuid: vdiA))
        #expect(throws: LVHDError.metadataTooLarge("4095 VDI slots need 4195328 bytes, MGT has 4194304")) { try c.writeMetadata(over) }
        #expect(try c.readMetadata() == nil)
        let long = LVHDMetadata(sr: .init(uuid: srUUID), vdis: [.init(uuid: vdiA, type: String(repeating: "t", count: 400))])
        #expect(throws: LVHDError.self) { try c.writeMetadata(long) }
        #expect(try c.readMetadata() == nil)
        try c.writeMetadata(fits)
        #expect(try c.readMetadata()?.vdis.count == 4094)
    }
}
