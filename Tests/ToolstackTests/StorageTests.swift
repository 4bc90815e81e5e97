import Foundation
import Testing
@testable import Toolstack
import XenAPIWire

@Suite(.serialized) struct StorageTests {
    private func failure(_ body: () throws -> Any) -> [String]? {
        do { _ = try body(); return nil } catch let f as APIFailure { return f.errorDescription } catch { return ["other: \(error)"] }
    }

    private func strings(_ v: XMLRPCValue) -> [String] { v.arrayValue?.compactMap(\.stringValue) ?? [] }

    @Test func vdiLifecycleThroughThePlugin() throws {
        let ts = try TestToolstack()
        defer { ts.destroy() }
        let c = try ts.client()
        let sr = try ts.createSR(c)
        let srRecord = try c.call("SR.get_record", [.string(sr)])
        #expect(srRecord[member: "type"] == "ext")
        // sr_attach's callbacks reached us: sizes from the plugin, and the dirty flag.
        #expect(Int64(srRecord[member: "physical_size"]?.stringValue ?? "0")! > 0)
        #expect(srRecord[member: "other_config"]?[member: "dirty"] != nil)
        let pbds = strings(srRecord[member: "PBDs"]!)
        #expect(pbds.count == 1)
        #expect(try c.call("PBD.get_currently_attached", [.string(pbds[0])]) == .boolean(true))

        let vdi = try ts.createVDI(c, sr: sr, name: "disk0")
        let rec = try c.call("VDI.get_record", [.string(vdi)])
        let uuid = rec[member: "uuid"]!.stringValue!
        #expect(rec[member: "name_label"] == "disk0")
        #expect(rec[member: "virtual_size"] == .string(String(64 << 20)))
        #expect(rec[member: "other_config"] == .struct([XMLRPCMember("purpose", "test")]))
        #expect(FileManager.default.fileExists(atPath: ts.srDirectory + "/\(uuid).vhd"))

        let snap = try c.call("VDI.snapshot", [.string(vdi), .struct([])]).stringValue!
        let snapRec = try c.call("VDI.get_record", [.string(snap)])
        #expect(snapRec[member: "is_a_snapshot"] == .boolean(true))
        #expect(snapRec[member: "snapshot_of"] == .string(vdi))
        #expect(snapRec[member: "name_label"] == "disk0")
        #expect(strings(try c.call("VDI.get_snapshots", [.string(vdi)])) == [snap])
        // The plugin made the chain: a hidden base copy now parents both.
        let parent = try c.call("VDI.get_sm_config", [.string(vdi)])[member: "vhd-parent"]?.stringValue
        #expect(parent != nil && parent == snapRec[member: "sm_config"]?[member: "vhd-parent"]?.stringValue)
        let base = try c.call("VDI.get_by_uuid", [.string(parent!)]).stringValue!
        #expect(try c.call("VDI.get_managed", [.string(base)]) == .boolean(false))

        let clone = try c.call("VDI.clone", [.string(snap), .struct([])]).stringValue!
        #expect(try c.call("VDI.get_is_a_snapshot", [.string(clone)]) == .boolean(false))

        _ = try c.call("VDI.resize", [.string(vdi), .string(String(128 << 20))])
        #expect(try c.call("VDI.get_virtual_size", [.string(vdi)]) == .string(String(128 << 20)))
        #expect(failure { try c.call("VDI.resize", [.string(vdi), "12"]) }?.first?.hasPrefix("SR_BACKEND_FAILURE_") == true)

        _ = try c.call("VDI.destroy", [.string(clone)])
        #expect(failure { try c.call("VDI.get_record", [.string(clone)]) } == ["HANDLE_INVALID", "VDI", clone])
        #expect(strings(try c.call("SR.get_VDIs", [.string(sr)])).count == 3)

        // A record forgotten is found again by a scan.
        _ = try c.call("VDI.forget", [.string(snap)])
        #expect(failure { try c.call("VDI.get_by_uuid", [snapRec[member: "uuid"]!]) }?.first == "UUID_INVALID")
        _ = try c.call("SR.scan", [.string(sr)])
        #expect(try c.call("VDI.get_by_uuid", [snapRec[member: "uuid"]!]).stringValue?.hasPrefix("OpaqueRef:") == true)

        // Destroy needs the PBD unplugged, then an empty SR.
        #expect(failure { try c.call("SR.destroy", [.string(sr)]) } == ["SR_HAS_PBD", sr])
        _ = try c.call("PBD.unplug", [.string(pbds[0])])
        #expect(failure { try c.call("VDI.create", [.struct([XMLRPCMember("SR", .string(sr)), XMLRPCMember("virtual_size", "1048576")])]) } == ["SR_NO_PBDS", sr])
        #expect(failure { try c.call("SR.destroy", [.string(sr)]) } == ["SR_NOT_EMPTY"])
        _ = try c.call("PBD.plug", [.string(pbds[0])])
        for v in strings(try c.call("SR.get_VDIs", [.string(sr)])) where try c.call("VDI.get_managed", [.string(v)]) == .boolean(true) {
            _ = try c.call("VDI.destroy", [.string(v)])
        }
        _ = try c.call("PBD.unplug", [.string(pbds[0])])
        _ = try c.call("SR.destroy", [.string(sr)])
        #expect(try c.call("SR.get_all").arrayValue?.isEmpty == true)
        #expect(try c.call("PBD.get_all").arrayValue?.isEmpty == true)
        #expect(try c.call("VDI.get_all").arrayValue?.isEmpty == true)
    }

    @Test func vbdPlugAttachesAndActivatesTheVDI() throws {
        let ts = try TestToolstack()
        defer { ts.destroy() }
        let c = try ts.client()
        let sr = try ts.createSR(c)
        let vdi = try ts.createVDI(c, sr: sr)
        let dom0 = try c.call("VM.get_all").arrayValue![0]
        let vbd = try c.call("VBD.create", [.struct([
            XMLRPCMember("VM", dom0), XMLRPCMember("VDI", .string(vdi)), XMLRPCMember("userdevice", "1"),
            XMLRPCMember("mode", "RW"), XMLRPCMember("type", "Disk"),
        ])]).stringValue!
        _ = try c.call("VBD.plug", [.string(vbd)])
        let rec = try c.call("VBD.get_record", [.string(vbd)])
        #expect(rec[member: "currently_attached"] == .boolean(true))
        #expect(rec[member: "device"] == "xvdb")
        let nbd = try #require(rec[member: "runtime_properties"]?[member: "params_nbd"]?.stringValue)
        #expect(nbd.hasPrefix("nbd:unix:"))
        let socketPath = String(nbd.dropFirst("nbd:unix:".count).prefix { $0 != ":" })
        #expect(FileManager.default.fileExists(atPath: socketPath))
        // The plugin's activation key on the VDI names this host.
        let sm = try c.call("VDI.get_sm_config", [.string(vdi)])
        #expect(sm[member: "host_\(ts.service.hostRef)"] == "RW")
        #expect(failure { try c.call("VDI.destroy", [.string(vdi)]) } == ["VDI_IN_USE", vdi, "destroy"])
        #expect(failure { try c.call("VBD.destroy", [.string(vbd)]) } == ["DEVICE_ALREADY_ATTACHED", vbd])
        let pbd = try c.call("PBD.get_all").arrayValue![0]
        #expect(failure { try c.call("PBD.unplug", [pbd]) } == ["VDI_IN_USE", vdi, "unplug"])
        _ = try c.call("VBD.unplug", [.string(vbd)])
        #expect(try c.call("VBD.get_currently_attached", [.string(vbd)]) == .boolean(false))
        #expect(try c.call("VDI.get_sm_config", [.string(vdi)])[member: "host_\(ts.service.hostRef)"] == nil)
        _ = try c.call("VBD.destroy", [.string(vbd)])
        _ = try c.call("VDI.destroy", [.string(vdi)])
    }

    @Test func introduceRecordsAVolumeTheSRHolds() throws {
        let ts = try TestToolstack()
        defer { ts.destroy() }
        let c = try ts.client()
        let sr = try ts.createSR(c)
        let vdi = try ts.createVDI(c, sr: sr, size: 8 << 20)
        let uuid = try c.call("VDI.get_uuid", [.string(vdi)])
        let location = try c.call("VDI.get_location", [.string(vdi)])
        _ = try c.call("VDI.forget", [.string(vdi)])
        #expect(failure { try c.call("VDI.get_by_uuid", [uuid]) }?.first == "UUID_INVALID")
        let back = try c.call("VDI.introduce", [uuid, "again", "re-introduced", .string(sr), "user", false, false, .struct([]),
                                                location, .struct([]), .struct([]), true]).stringValue!
        #expect(try c.call("VDI.get_uuid", [.string(back)]) == uuid)
        #expect(try c.call("VDI.get_name_label", [.string(back)]) == "again")
        #expect(try c.call("VDI.get_virtual_size", [.string(back)]) == .string(String(8 << 20)))
        #expect(failure { try c.call("VDI.introduce", [uuid, "", "", .string(sr), "user", false, false, .struct([]), location, .struct([]), .struct([]), true]) } == ["VDI_EXISTS", uuid.stringValue!])
    }

    @Test func restartKeepsRecordsAndFailsTasksInFlight() throws {
        let first = try TestToolstack()
        let root = first.root
        let c = try first.client()
        let sr = try first.createSR(c)
        let vdi = try first.createVDI(c, sr: sr, name: "kept")
        // A record lost while the SR still holds the volume: the re-attach's scan brings it back.
        let lost = try first.createVDI(c, sr: sr, name: "lost")
        let lostUUID = try c.call("VDI.get_uuid", [.string(lost)])
        _ = try c.call("VDI.forget", [.string(lost)])
        // A task left pending, as a crash would leave it.
        let task = try first.service.createTask(name: "Async.VDI.snapshot", session: "x")
        first.stop()
        let second = try TestToolstack(root: root)
        defer { second.destroy() }
        let c2 = try second.client()
        #expect(try c2.call("VDI.get_name_label", [.string(vdi)]) == "kept")
        #expect(try c2.call("SR.get_VDIs", [.string(sr)]).arrayValue?.contains(.string(vdi)) == true)
        #expect(try c2.call("VDI.get_by_uuid", [lostUUID]).stringValue?.hasPrefix("OpaqueRef:") == true)
        #expect(try c2.call("SR.get_VDIs", [.string(sr)]).arrayValue?.count == 2)
        #expect(try c2.call("task.get_status", [.string(task)]) == "failure")
        #expect(try c2.call("task.get_error_info", [.string(task)]).arrayValue?.first == "INTERNAL_ERROR")
        // Sessions do not survive a restart.
        #expect(throws: APIFailure.self) { try c.call("pool.get_all") }
    }
}
