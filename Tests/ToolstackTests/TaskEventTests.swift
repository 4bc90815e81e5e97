import Foundation
import Testing
@testable import Toolstack
import XenAPIWire

@Suite(.serialized) struct TaskEventTests {
    @Test func asyncCallsRunInTasksThatEventsReport() throws {
        let ts = try TestToolstack()
        defer { ts.destroy() }
        let c = try ts.client()
        let sr = try ts.createSR(c)
        let start = try c.call("event.from", [.array(["task"]), "", .double(0)])
        let token = try #require(start[member: "token"]?.stringValue)
        let task = try c.call("Async.VDI.create", [.struct([
            XMLRPCMember("SR", .string(sr)), XMLRPCMember("virtual_size", "1048576"), XMLRPCMember("name_label", "async"),
        ])]).stringValue!
        #expect(task.hasPrefix("OpaqueRef:"))
        // Wait for the task's success through event.from.
        var from = token
        var status = ""
        let deadline = Date().addingTimeInterval(60)
        while status != "success" && status != "failure" && Date() < deadline {
            let batch = try c.call("event.from", [.array(["task"]), .string(from), .double(10)])
            from = batch[member: "token"]!.stringValue!
            for e in batch[member: "events"]?.arrayValue ?? [] where e[member: "ref"] == .string(task) {
                #expect(e[member: "class"] == "task")
                status = e[member: "snapshot"]?[member: "status"]?.stringValue ?? status
            }
        }
        #expect(status == "success")
        #expect(try c.call("task.get_progress", [.string(task)]) == .double(1))
        let result = try c.call("task.get_result", [.string(task)]).stringValue!
        let vdi = try XMLRPCDecoder().decodeValue(result).stringValue!
        #expect(try c.call("VDI.get_name_label", [.string(vdi)]) == "async")
        // A failing async call: the task carries the error.
        let bad = try c.call("Async.VDI.destroy", ["OpaqueRef:nothing"]).stringValue!
        var badStatus = XMLRPCValue.string("pending")
        for _ in 0..<200 where badStatus == "pending" {
            usleep(20_000)
            badStatus = try c.call("task.get_status", [.string(bad)])
        }
        #expect(badStatus == "failure")
        #expect(try c.call("task.get_error_info", [.string(bad)]) == .array(["HANDLE_INVALID", "VDI", "OpaqueRef:nothing"]))
        // SM tasks cannot be cancelled; client tasks can.
        #expect(throws: APIFailure.self) { try c.call("task.cancel", [.string(bad)]) }
        let mine = try c.call("task.create", ["backup", "a client's own task"])
        #expect(try c.call("task.get_allowed_operations", [mine]) == .array(["cancel"]))
        _ = try c.call("task.cancel", [mine])
        #expect(try c.call("task.get_status", [mine]) == "cancelled")
        #expect(try c.call("task.get_error_info", [mine]) == .array(["TASK_CANCELLED", mine]))
        _ = try c.call("task.destroy", [.string(bad)])
        #expect(throws: APIFailure.self) { try c.call("task.get_status", [.string(bad)]) }
    }

    @Test func eventFromFiltersClassesAndTimesOut() throws {
        let ts = try TestToolstack()
        defer { ts.destroy() }
        let c = try ts.client()
        let start = try c.call("event.from", [.array(["pool"]), "", .double(0)])
        #expect(start[member: "events"]?.arrayValue?.count == 1)
        let token = start[member: "token"]!
        let pool = try c.call("pool.get_all").arrayValue![0]
        let t0 = Date()
        let quiet = try c.call("event.from", [.array(["vdi"]), token, .double(0.3)])
        #expect(quiet[member: "events"]?.arrayValue?.isEmpty == true)
        #expect(Date().timeIntervalSince(t0) >= 0.25)
        _ = try c.call("pool.set_name_label", [pool, "renamed"])
        let changed = try c.call("event.from", [.array(["pool"]), token, .double(5)])
        let events = changed[member: "events"]?.arrayValue ?? []
        #expect(events.count == 1)
        #expect(events.first?[member: "operation"] == "mod")
        #expect(events.first?[member: "snapshot"]?[member: "name_label"] == "renamed")
        #expect(throws: APIFailure.self) { try c.call("event.from", [.array(["pool"]), "garbage", .double(0)]) }
    }
}
