import FakeXapi
import Foundation
import SMCore
import Testing
import VHD

/// Several `smdriver` processes at once on one SR, as xapi runs them for several VMs: each
/// worker snapshots, clones, deletes, updates and scans in a loop for a few seconds. No call may
/// fail, and afterwards the SR scans clean, every VHD passes `Check` and every user VDI reads
/// back exactly as it was written.
@Suite struct ConcurrencyTests {
    /// One call that did not go as expected.
    struct Failure: Sendable, CustomStringConvertible {
        var worker: Int
        var command: String
        var detail: String
        var description: String { "worker \(worker) \(command): \(detail)" }
    }

    /// Collects failures from the worker threads.
    final class Failures: @unchecked Sendable {
        private let lock = NSLock()
        private var list: [Failure] = []
        private var counts: [String: Int] = [:]
        func add(_ f: Failure) { lock.withLock { list.append(f) } }
        func count(_ command: String) { lock.withLock { counts[command, default: 0] += 1 } }
        var all: [Failure] { lock.withLock { list } }
        var calls: [String: Int] { lock.withLock { counts } }
    }

    static let workers = 4
    static let duration: TimeInterval = 4
    static let maxRounds = 8

    @Test func fourWorkersSnapshotCloneDeleteAndScan() throws {
        let sr = try TestSR(mode: .path)
        defer { sr.cleanup() }
        try sr.createAndAttach()
        var vdis: [String] = []
        var hashes: [String: UInt64] = [:]
        for i in 0..<Self.workers {
            let v = try sr.createVDI(size: 16 << 20, label: "worker \(i)")
            try sr.writePattern(v, seed: UInt8(40 + i))
            hashes[v] = try sr.contentHash(v)
            vdis.append(v)
        }
        let failures = Failures()
        let targets = vdis
        let group = DispatchGroup()
        let deadline = Date().addingTimeInterval(Self.duration)
        for i in 0..<Self.workers {
            group.enter()
            let thread = Thread {
                defer { group.leave() }
                Self.work(sr: sr, worker: i, vdi: targets[i], deadline: deadline, failures: failures)
            }
            thread.stackSize = 4 << 20
            thread.start()
        }
        #expect(group.wait(timeout: .now() + 120) == .success, "workers did not finish")
        #expect(failures.all.isEmpty, "\(failures.all)")
        let calls = failures.calls
        #expect((calls["vdi_snapshot"] ?? 0) >= Self.workers, "each worker got work done: \(calls)")

        try sr.value(try sr.call("sr_scan"))
        #expect(sr.strayFiles().isEmpty, "\(sr.strayFiles())")
        let problems = sr.treeProblems()
        #expect(problems.isEmpty, "\(problems)")
        for (v, hash) in hashes { #expect(try sr.contentHash(v) == hash, "VDI \(v) changed") }
        #expect(try sr.visibleVDIs() == Set(vdis), "every snapshot and clone was deleted")
        #expect(sr.recordProblems().isEmpty, "\(sr.recordProblems())")
        #expect(sr.srStatsProblems().isEmpty, "\(sr.srStatsProblems())")
    }

    /// One worker's loop: rewrite its VDI's data (same bytes, under the SR lock, as a guest would
    /// between snapshots), snapshot, clone, update, generate its config, delete both copies, scan.
    /// Like xapi, which runs one operation at a time per VDI, a worker only touches its own VDIs;
    /// SR-wide commands (scan, update) run from every worker.
    static func work(sr: TestSR, worker: Int, vdi: String, deadline: Date, failures: Failures) {
        func run(_ command: String, _ target: String?, _ edit: (inout RequestDocument) -> Void = { _ in }) -> XMLRPCValue? {
            failures.count(command)
            do {
                let result = try sr.call(command, vdi: target, edit)
                guard result.exitStatus == 0, !result.timedOut else {
                    failures.add(Failure(worker: worker, command: command, detail: "\(result)"))
                    return nil
                }
                let response = try result.response()
                if let fault = response.faultValue {
                    failures.add(Failure(worker: worker, command: command, detail: "fault \(fault.code) \(fault.string)"))
                    return nil
                }
                return response.value
            } catch {
                failures.add(Failure(worker: worker, command: command, detail: "\(error)"))
                return nil
            }
        }
        var round = 0
        while Date() < deadline && round < maxRounds {
            round += 1
            do {
                try sr.withSRLock { try sr.writePattern(vdi, seed: UInt8(40 + worker)) }
            } catch {
                failures.add(Failure(worker: worker, command: "write", detail: "\(error)"))
            }
            let snapshot = run("vdi_snapshot", vdi).flatMap { $0[member: "uuid"]?.stringValue }
            let clone = run("vdi_clone", vdi).flatMap { $0[member: "uuid"]?.stringValue }
            _ = run("vdi_update", vdi)
            _ = run("sr_update", nil)
            _ = run("vdi_generate_config", vdi)
            if let snapshot { _ = run("vdi_delete", snapshot) }
            if let clone { _ = run("vdi_delete", clone) }
            _ = run("sr_scan", nil)
        }
    }
}
