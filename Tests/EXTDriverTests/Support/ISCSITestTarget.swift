import Foundation
import ISCSI

/// A private iSCSI target (tgt on loopback, `scripts/iscsi-test-target.sh`) holding one LUN for
/// one LVM-over-iSCSI SR under test: started on a free port, optionally requiring (mutual)
/// CHAP, killed or given more portals by the test, discarded at the end with its files.
final class ISCSITestTarget: @unchecked Sendable {
    /// The portal's address.
    let host = "127.0.0.1"
    /// The portal's port.
    let port: Int
    /// The target's IQN.
    let iqn: String
    /// The script's state directory.
    let state: String
    /// CHAP credentials the target requires (nil: none).
    let chap: (user: String, password: String, targetUser: String?, targetPassword: String?)?
    /// The LUN's SCSI id, as the driver reads it.
    private(set) var scsiID = ""

    /// The LUN's backing file (its bytes are the LUN's).
    var backingFile: String { state + "/lun1.img" }

    /// The package's `scripts/iscsi-test-target.sh`.
    static var script: String {
        if let s = ProcessInfo.processInfo.environment["SWIFTSM_TEST_ISCSI_SCRIPT"] { return s }
        return E2EFixtures.packageRoot.appendingPathComponent("scripts/iscsi-test-target.sh").path
    }

    /// Why the tests that need tgt cannot run here (nil: they can).
    static let unavailableReason: String? = {
        FileManager.default.isExecutableFile(atPath: "/usr/sbin/tgtd") ? nil : "tgt is not installed (make test installs it)"
    }()

    /// A target of one `sizeMB` MiB LUN under `root`, started on a free port.
    init(root: String, sizeMB: Int = 512, chap: (user: String, password: String, targetUser: String?, targetPassword: String?)? = nil) throws {
        state = root + "/iscsi"
        self.chap = chap
        iqn = "iqn.2026-12.org.swiftsm.test:sr-" + UUID().uuidString.prefix(8).lowercased()
        var last = ""
        var port = 25000 + Int.random(in: 0..<400) * 2
        var started = false
        for _ in 0..<40 where !started {
            port += 2
            do {
                try Self.run(["start", state, String(port), iqn, String(sizeMB), "1"], state: state, environment: Self.chapEnvironment(chap))
                started = true
            } catch {
                last = "\(error)"
            }
        }
        self.port = port
        guard started else { throw UnexpectedAnswer(description: "no private iSCSI target started: \(last)") }
        do { scsiID = try Self.lunID(host: host, port: port, iqn: iqn, chap: chap) } catch {
            stop()
            throw error
        }
    }

    /// The script's environment for CHAP.
    private static func chapEnvironment(_ chap: (user: String, password: String, targetUser: String?, targetPassword: String?)?) -> [String: String] {
        guard let chap else { return [:] }
        var env = ["ISCSI_CHAP_USER": chap.user, "ISCSI_CHAP_PASSWORD": chap.password]
        if let u = chap.targetUser, let p = chap.targetPassword { env["ISCSI_CHAP_TARGET_USER"] = u; env["ISCSI_CHAP_TARGET_PASSWORD"] = p }
        return env
    }

    /// The SCSI id of LUN 1, read over a session of our own.
    private static func lunID(host: String, port: Int, iqn: String,
                              chap: (user: String, password: String, targetUser: String?, targetPassword: String?)?) throws -> String {
        var target = ISCSITarget(portals: [ISCSIPortal(host: host, port: port)], iqn: iqn, lun: 1, timeoutSeconds: 10)
        if let chap {
            target.chap = ISCSIChap(user: chap.user, secret: ISCSISecret(chap.password), targetUser: chap.targetUser,
                                    targetSecret: chap.targetPassword.map(ISCSISecret.init))
        }
        guard let disk = try ISCSIDiscovery.disks(target).first else { throw UnexpectedAnswer(description: "the target offers no disk") }
        return disk.scsiID
    }

    /// Runs the script; its output goes to `<state>.log`.
    private static func run(_ arguments: [String], state: String, environment: [String: String] = [:]) throws {
        let log = state + ".log"
        let status = try Spawned.run(["/bin/bash", script] + arguments, output: log, environment: environment)
        guard status == 0 else {
            let tail = (try? String(contentsOfFile: log, encoding: .utf8)).map { String($0.suffix(600)) } ?? ""
            throw UnexpectedAnswer(description: "iscsi-test-target.sh \(arguments.first ?? "") exited \(status)\n\(tail)")
        }
    }

    /// Kills tgtd as a crash would (the LUN file stays).
    func kill() throws { try Self.run(["kill", state], state: state) }

    /// Starts tgtd again with the same settings.
    func restart(sizeMB: Int = 512) throws {
        try Self.run(["start", state, String(port), iqn, String(sizeMB), "1"], state: state, environment: Self.chapEnvironment(chap))
    }

    /// Adds a listening portal (a second path to the LUN).
    func addPortal(_ address: String) throws { try Self.run(["portal-add", state, address], state: state) }

    /// Takes a portal away (its connections reset).
    func removePortal(_ address: String) throws { try Self.run(["portal-delete", state, address], state: state) }

    /// Stops tgtd (its files are removed with the test's root).
    func stop() { try? Self.run(["stop", state], state: state) }
}
