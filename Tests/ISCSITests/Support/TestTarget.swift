import Foundation
import ISCSI
import RemoteStorage

/// An iSCSI target for the tests: the shared ones `scripts/with-iscsi-target.sh` starts (from
/// `SWIFTSM_TEST_ISCSI*`), or a private one a test starts, kills and restarts.
struct TestTarget: Sendable {
    /// Address of the portal.
    let host: String
    /// Its port.
    let port: Int
    /// The target's IQN.
    let iqn: String
    /// The state directory (LUN n is `lun<n>.img` in it).
    let state: String

    /// The backing file of LUN `n`.
    func backingFile(lun n: Int) -> String { "\(state)/lun\(n).img" }

    /// A configuration for LUN `lun` on this target.
    func target(lun: Int? = 1, chap: ISCSIChap? = nil, hold: HoldPolicy = .soft, timeout: Int = 10,
                extraPortals: [ISCSIPortal] = []) -> ISCSITarget {
        ISCSITarget(portals: [ISCSIPortal(host: host, port: port)] + extraPortals, iqn: iqn, lun: lun, chap: chap,
                    timeoutSeconds: timeout, retries: 2, hold: hold, pathRetrySeconds: 0.5)
    }

    private static func parse(_ spec: String?, state: String?) -> TestTarget? {
        guard let spec else { return nil }
        let parts = spec.split(separator: ":", maxSplits: 2).map(String.init)
        guard parts.count == 3, let port = Int(parts[1]) else { return nil }
        return TestTarget(host: parts[0], port: port, iqn: parts[2], state: state ?? "")
    }

    /// Why the iSCSI tests that need a target do not run here (nil: they run). Printed once.
    static let skipReason: String? = {
        if ProcessInfo.processInfo.environment["SWIFTSM_TEST_ISCSI"] != nil { return nil }
        let why = "SWIFTSM_TEST_ISCSI is unset: the iSCSI tests that need a target are skipped (run them through scripts/with-iscsi-target.sh; make test does)"
        FileHandle.standardError.write(Data("ISCSITests: \(why)\n".utf8))
        return why
    }()

    /// Whether the shared targets are there (prints why not, once).
    static var available: Bool { skipReason == nil }

    /// The plain shared target (LUN 1 thick, LUN 2 thin).
    static func plain() throws -> TestTarget {
        let env = ProcessInfo.processInfo.environment
        guard let t = parse(env["SWIFTSM_TEST_ISCSI"], state: env["SWIFTSM_TEST_ISCSI_STATE"]) else {
            throw TestFailure("SWIFTSM_TEST_ISCSI is unset or malformed")
        }
        return t
    }

    /// The shared target that requires mutual CHAP, and its credentials.
    static func chap() throws -> (TestTarget, ISCSIChap) {
        let env = ProcessInfo.processInfo.environment
        guard let t = parse(env["SWIFTSM_TEST_ISCSI_CHAP"], state: nil),
              let u = env["SWIFTSM_TEST_ISCSI_CHAP_USER"], let p = env["SWIFTSM_TEST_ISCSI_CHAP_PASSWORD"],
              let tu = env["SWIFTSM_TEST_ISCSI_CHAP_TARGET_USER"], let tp = env["SWIFTSM_TEST_ISCSI_CHAP_TARGET_PASSWORD"] else {
            throw TestFailure("SWIFTSM_TEST_ISCSI_CHAP* is unset")
        }
        return (t, ISCSIChap(user: u, secret: ISCSISecret(p), targetUser: tu, targetSecret: ISCSISecret(tp)))
    }

    /// The package's `scripts/iscsi-test-target.sh`.
    static var script: String {
        if let s = ProcessInfo.processInfo.environment["SWIFTSM_TEST_ISCSI_SCRIPT"] { return s }
        return URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("scripts/iscsi-test-target.sh").path
    }

    /// Runs the script with `arguments`; its output goes to `<state>.log`.
    func script(_ arguments: [String], environment: [String: String] = [:]) throws {
        let log = state + ".log"
        let status = try Spawned(["/bin/bash", Self.script] + arguments, output: log, environment: environment).wait()
        guard status == 0 else {
            let tail = (try? String(contentsOfFile: log, encoding: .utf8)).map { String($0.suffix(800)) } ?? ""
            throw TestFailure("iscsi-test-target.sh \(arguments.joined(separator: " ")) exited \(status)\n\(tail)")
        }
    }

    /// Starts (or starts again) this private target: `sizeMB` MiB, one LUN.
    func start(sizeMB: Int = 128) throws { try script(["start", state, String(port), iqn, String(sizeMB), "1"]) }
    /// Kills tgtd as a crash would (LUN files kept).
    func kill() throws { try script(["kill", state]) }
    /// Stops tgtd.
    func stop() throws { try script(["stop", state]) }
    /// Stops tgtd and removes this private target's directory (LUN files, log).
    func discard() {
        try? stop()
        try? FileManager.default.removeItem(atPath: URL(fileURLWithPath: state).deletingLastPathComponent().path)
    }

    /// A private target on a free port (so that killing it disturbs no other test), started.
    static func startPrivate(name: String, sizeMB: Int = 128) throws -> TestTarget {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("swiftsm-iscsi-\(name)-\(getpid())").path
        try? FileManager.default.removeItem(atPath: root)
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        var last: Error?
        var port = 24260 + Int.random(in: 0..<200) * 2
        for _ in 0..<50 {
            port += 2
            let t = TestTarget(host: "127.0.0.1", port: port, iqn: "iqn.2026-12.org.swiftsm.test:\(name)", state: root + "/state")
            do { try t.start(sizeMB: sizeMB); return t } catch { last = error }
        }
        throw TestFailure("no private target started: \(last.map { "\($0)" } ?? "")")
    }
}
