import Foundation
import ISCSI
import RemoteStorage
import SMCore

/// An LVHDoISCSISR's settings as the Python SM reads them: the iSCSI target of `device-config`
/// (`target`, `port`, `targetIQN`, `SCSIid`, `LUNid`, CHAP with the `_secret` variants read
/// through XenAPI, `multihomelist` as further portals, `localIQN` or the host's `iscsi_iqn`),
/// `allocation` (SR sm-config overriding device-config), and SR other-config
/// `iscsi-hold-timeout` (seconds the data path holds requests through an outage).
struct LVMoISCSIConfiguration {
    /// The LUN and how to log in to it.
    var target: ISCSITarget
    /// Leaves deflated while detached (`thin`) or always inflated (`thick`, the default).
    var allocation: Allocation
    /// Whether this host is the SR master (`SRmaster=true`): the only one that changes the VG.
    var isMaster: Bool

    /// `allocation=thick|thin`.
    enum Allocation: String {
        /// Leaves always inflated to their full size.
        case thick
        /// Leaves deflated while no host has them active, inflated on activation.
        case thin
    }

    /// Sessions per path a data path opens: one per request its I/O threads (8) have in flight;
    /// SMAPI calls keep the default 4.
    static let dataPathSessionsPerPath = 8

    /// Default `iscsi-hold-timeout`: five minutes, as the NFS SR's.
    static let defaultHoldSeconds = 300.0

    /// The device-config keys whose values are secrets, each with its `_secret` variant.
    static let secretKeys = ["chappassword", "incoming_chappassword"]

    /// Reads the settings of the call in `c`, asking the toolstack (secrets, the host's initiator
    /// name) through `answers`, once per process. `requireIQN` and `requireSCSIid` turn their
    /// absence into faults 96 and 107 (sr_probe passes false to list what there is instead).
    init(_ c: DriverContext, answers: ToolstackAnswers, requireIQN: Bool = true, requireSCSIid: Bool = true) throws {
        var dc = c.request.deviceConfig.dictionary
        for key in Self.secretKeys where dc[key] == nil || dc[key] == "" {
            if let uuid = dc[key + "_secret"], !uuid.isEmpty { dc[key] = try Self.secret(uuid, key: key, c, answers) }
        }
        if let more = dc["multihomelist"], !more.isEmpty {
            dc["target"] = [dc["target"] ?? "", more].filter { !$0.isEmpty }.joined(separator: ",")
        }
        var initiator = dc["localIQN"].flatMap { $0.isEmpty ? nil : $0 }
        if initiator == nil, let host = c.request.hostRef, !host.isEmpty {
            initiator = answers.value("iscsi_iqn of \(host)") {
                (try? c.callbacks.hostOtherConfig(host: host))?["iscsi_iqn"].flatMap { $0.isEmpty ? nil : $0 }
            }
        }
        do {
            target = try ISCSITarget(deviceConfig: dc, initiatorIQN: initiator, requireIQN: requireIQN, requireSCSIid: requireSCSIid)
        } catch let e as ISCSIError {
            throw e.fault(for: c.request.command)
        }
        let other = c.srOtherConfig()
        if c.servesDataPath {
            target.hold = .hold(seconds: other["iscsi-hold-timeout"].flatMap(Double.init) ?? Self.defaultHoldSeconds)
            // As many sessions as the data path has requests in flight (its I/O threads).
            target.sessionsPerPath = Self.dataPathSessionsPerPath
        }
        let requested = c.request.srSMConfig?["allocation"] ?? dc["allocation"] ?? "thick"
        guard let allocation = Allocation(rawValue: requested.lowercased()) else {
            throw SMAPIError(.InvalidArg, opterr: "allocation must be thick or thin, not \(requested)")
        }
        self.allocation = allocation
        isMaster = c.request.isMaster
    }

    /// The value of secret `uuid` for `key`: through XenAPI, else (a process without a session,
    /// such as the data path) as this host's `sr_attach` kept it in the run directory, 0600.
    private static func secret(_ uuid: String, key: String, _ c: DriverContext, _ answers: ToolstackAnswers) throws -> String {
        let read = answers.value("secret \(uuid)") {
            guard let value = try? c.callbacks.secretValue(uuid: uuid) else { return nil }
            if let sr = try? c.srUUID() { try? SecretFile(run: c.run, sr: sr, key: key).write(value) }
            return value
        }
        if let read { return read }
        if let sr = try? c.srUUID(), let kept = SecretFile(run: c.run, sr: sr, key: key).read() { return kept }
        throw SMAPIError(.ConfigParamsMissing, opterr: "\(key)_secret: secret \(uuid) cannot be read")
    }
}

/// A secret this host read through XenAPI for an attached SR, kept for processes that have no
/// session (the data path, the collector): one file per key, 0600 under the run directory,
/// removed at `sr_detach`. Never logged, never in argv.
struct SecretFile {
    /// The file.
    let path: String

    /// The file of `key` of SR `sr`.
    init(run: RunDirectory, sr: String, key: String) { path = Self.directory(run: run, sr: sr) + "/" + key }

    /// The directory of SR `sr`'s secrets.
    static func directory(run: RunDirectory, sr: String) -> String { run.root + "/secrets/" + sr }

    /// Writes `value` (0600, replacing an older one atomically).
    func write(_ value: String) throws {
        let dir = (path as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let tmp = path + ".new"
        guard FileManager.default.createFile(atPath: tmp, contents: Data(value.utf8), attributes: [.posixPermissions: 0o600]) else {
            throw SMAPIError(.SMGeneral, opterr: "cannot keep a secret under \(dir)")
        }
        guard rename(tmp, path) == 0 else { throw SMAPIError(.SMGeneral, opterr: "cannot keep a secret under \(dir)") }
    }

    /// The kept value, nil without one.
    func read() -> String? { FileManager.default.contents(atPath: path).map { String(decoding: $0, as: UTF8.self) } }

    /// Forgets every secret kept for SR `sr`.
    static func removeAll(run: RunDirectory, sr: String) { try? FileManager.default.removeItem(atPath: directory(run: run, sr: sr)) }
}

/// What this process asked the toolstack for an SR (its secrets, the host's initiator name), each
/// asked once: a driver builds the configuration several times in one call.
final class ToolstackAnswers: @unchecked Sendable {
    private let lock = NSLock()
    // Guarded by `lock`; nil values are answers too (nothing there).
    private var values: [String: String?] = [:]

    /// The answer for `key`, from `ask` the first time.
    func value(_ key: String, _ ask: () -> String?) -> String? {
        lock.withLock {
            if let known = values[key] { return known }
            let answer = ask()
            values[key] = .some(answer)
            return answer
        }
    }
}
