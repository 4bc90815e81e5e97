import Foundation
import Testing
@testable import Toolstack
import XenAPIWire

/// `task.cancel` of storage tasks: a plugin that can be stopped safely is killed, a multi-step
/// operation stops at its next safe point and undoes its first step, a finished task refuses.
/// The SR type `slow` is the real smdriver behind a plugin that takes its time for some commands.
@Suite(.serialized) struct TaskCancelTests {
    private func waitForStatus(_ c: XenAPIConnection, _ task: XMLRPCValue, not pending: Set<String>) throws -> String {
        for _ in 0..<400 {
            let status = try c.call("task.get_status", [task]).stringValue ?? ""
            if !pending.contains(status) { return status }
            usleep(25_000)
        }
        return "timeout"
    }

    @Test func cancellingStorageTasks() throws {
        let ts = try TestToolstack()
        defer { ts.destroy() }
        let type = try ts.installSlowPlugin()
        let c = try ts.client()
        let host = try c.call("host.get_all").arrayValue![0]
        let sr = try c.call("SR.create", [host, .struct([XMLRPCMember("path", .string(ts.srDirectory))]), "0", "slow SR", "",
                                          .string(type), "user", false, .struct([])]).stringValue!
        let vdi = try ts.createVDI(c, sr: sr, name: "cancel-me")

        // A running scan is killed: the task ends cancelled well before the plugin would have.
        let scan = try c.call("Async.SR.scan", [.string(sr)])
        #expect(try c.call("task.get_allowed_operations", [scan]) == .array(["cancel"]))
        usleep(500_000)
        let t0 = Date()
        _ = try c.call("task.cancel", [scan])
        #expect(try waitForStatus(c, scan, not: ["pending", "cancelling"]) == "cancelled")
        #expect(Date().timeIntervalSince(t0) < 2)
        #expect(try c.call("task.get_error_info", [scan]) == .array(["TASK_CANCELLED", scan]))
        #expect(try c.call("task.get_allowed_operations", [scan]) == .array([]))
        // The SR is free again for the next operation.
        #expect(try c.call("SR.get_current_operations", [.string(sr)]) == .struct([]))
        _ = try c.call("SR.scan", [.string(sr)])

        // A plug is not killed inside its attach, but stops before the activation and detaches.
        let dom0 = try c.call("VM.get_all").arrayValue![0]
        let vbd = try c.call("VBD.create", [.struct([
            XMLRPCMember("VM", dom0), XMLRPCMember("VDI", .string(vdi)), XMLRPCMember("userdevice", "1"),
            XMLRPCMember("mode", "RW"), XMLRPCMember("type", "Disk"),
        ])]).stringValue!
        let plug = try c.call("Async.VBD.plug", [.string(vbd)])
        usleep(500_000)
        _ = try c.call("task.cancel", [plug])
        #expect(try c.call("task.get_status", [plug]) == "cancelling")
        #expect(try c.call("task.get_current_operations", [plug]).structMembers?.map(\.value) == ["cancel"])
        #expect(try waitForStatus(c, plug, not: ["pending", "cancelling"]) == "cancelled")
        #expect(try c.call("VBD.get_currently_attached", [.string(vbd)]) == .boolean(false))
        #expect(try c.call("VDI.get_sm_config", [.string(vdi)])[member: "host_\(ts.service.hostRef)"] == nil)
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: ts.configuration.runDirectory)
        #expect(!leftovers.contains { $0.hasSuffix(".pid") }, "no datapath left running: \(leftovers)")
        // Finished tasks cannot be cancelled.
        #expect(throws: APIFailure.self) { try c.call("task.cancel", [plug]) }
        let done = try c.call("Async.VDI.get_uuid", [.string(vdi)])
        #expect(try waitForStatus(c, done, not: ["pending"]) == "success")
        do {
            _ = try c.call("task.cancel", [done])
            Issue.record("cancelling a finished task must fail")
        } catch let f as APIFailure {
            #expect(f.code == "OPERATION_NOT_ALLOWED")
        }

        // xe task-cancel on a running scan.
        let xe = try Executables.require("xe")
        let scan2 = try c.call("Async.SR.scan", [.string(sr)])
        let uuid = try c.call("task.get_uuid", [scan2]).stringValue!
        usleep(300_000)
        let (status, out, err) = try Executables.run(xe, ["task-cancel", "uuid=\(uuid)"], env: ["XE_SOCKET": ts.configuration.socketPath])
        #expect(status == 0, "\(out) \(err)")
        #expect(try waitForStatus(c, scan2, not: ["pending", "cancelling"]) == "cancelled")
    }

    @Test func aTaskCancelledBeforeItsWorkStartsNeverRunsIt() throws {
        // The state every Async task carries: cancelled before it starts, its work never runs.
        let queued = TaskControl()
        guard case .notStarted = queued.cancel() else { Issue.record("expected notStarted"); return }
        #expect(queued.start() == false)
        // Started, nothing killable: it stops at its next safe point.
        let running = TaskControl()
        #expect(running.start())
        guard case .atNextSafePoint = running.cancel() else { Issue.record("expected atNextSafePoint"); return }
        #expect(running.isCancelled)
        // Started with a killable process: the process group is killed.
        let killable = TaskControl()
        #expect(killable.start())
        let t0 = Date()
        let (status, _, _) = SMPluginRunner.spawn("/bin/sh", ["-c", "sleep 20"], [:]) { pid in
            killable.beginKillable(pid)
            Thread { usleep(200_000); _ = killable.cancel() }.start()
        }
        killable.endKillable()
        #expect(status == 128 + 9)
        #expect(Date().timeIntervalSince(t0) < 5)
    }
}
