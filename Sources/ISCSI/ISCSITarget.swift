import Foundation
import RemoteStorage

/// Where an iSCSI LUN is and how to log in to it: what `device-config` says (see
/// `init(deviceConfig:)`), resolved once. Its `description` names portals, IQN and CHAP user
/// names, never a secret.
public struct ISCSITarget: Sendable, Hashable, CustomStringConvertible {
    /// The portals (paths) to the target, in the order given; requests go to those that work.
    public var portals: [ISCSIPortal]
    /// The target's IQN (`targetIQN`; nil or `*` for discovery only).
    public var iqn: String?
    /// The LUN's SCSI id as `scsi_id -g -u` prints it (`SCSIid`); when set, the LUN is found by
    /// it and every path must lead to it.
    public var scsiID: String?
    /// The LUN number, when known (otherwise found by `scsiID` through REPORT LUNS).
    public var lun: Int?
    /// CHAP credentials (nil: no authentication).
    public var chap: ISCSIChap?
    /// This host's initiator name (host other-config `iscsi_iqn`, or device-config `localIQN`).
    public var initiatorIQN: String
    /// Whether to ask for CRC32C header digests (the target decides).
    public var headerDigest: Bool
    /// Seconds a command or login may take before the connection counts as lost.
    public var timeoutSeconds: Int
    /// Reconnection attempts after a lost connection before a `soft` policy gives up.
    public var retries: Int
    /// What to do when every path stops answering.
    public var hold: HoldPolicy
    /// Most sessions one process opens per path (requests on different sessions run at once).
    public var sessionsPerPath: Int
    /// Seconds between attempts to bring a failed path back.
    public var pathRetrySeconds: Double

    /// The default initiator name when the host has none configured.
    public static var defaultInitiatorIQN: String {
        var name = [CChar](repeating: 0, count: 256)
        let host = gethostname(&name, name.count) == 0
            ? String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) : "localhost"
        let clean = host.lowercased().filter { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "." }
        return "iqn.2026-12.org.swiftsm:\(clean.isEmpty ? "host" : clean)"
    }

    /// A target; the defaults hold through a 300 s outage, 4 sessions per path.
    public init(portals: [ISCSIPortal], iqn: String?, scsiID: String? = nil, lun: Int? = nil, chap: ISCSIChap? = nil,
                initiatorIQN: String = ISCSITarget.defaultInitiatorIQN, headerDigest: Bool = false,
                timeoutSeconds: Int = 30, retries: Int = 3, hold: HoldPolicy = .soft,
                sessionsPerPath: Int = 4, pathRetrySeconds: Double = 5) {
        self.portals = portals
        self.iqn = iqn
        self.scsiID = scsiID
        self.lun = lun
        self.chap = chap
        self.initiatorIQN = initiatorIQN
        self.headerDigest = headerDigest
        self.timeoutSeconds = max(1, timeoutSeconds)
        self.retries = max(0, retries)
        self.hold = hold
        self.sessionsPerPath = max(1, sessionsPerPath)
        self.pathRetrySeconds = max(0.1, pathRetrySeconds)
    }

    /// Reads an LVHDoISCSISR's `device-config`: `target` (host[:port], comma-separated for
    /// several portals), `port` (default 3260, for portals without their own), `targetIQN`
    /// (`*` = any), `SCSIid`, `LUNid`, `chapuser`/`chappassword`, `incoming_chapuser`/
    /// `incoming_chappassword`, `localIQN`. `requireIQN` and `requireSCSIid` turn their absence
    /// into the Python SM's faults (96, 107), as sr_create and sr_attach need; sr_probe passes false.
    public init(deviceConfig dc: [String: String], initiatorIQN: String? = nil,
                requireIQN: Bool = true, requireSCSIid: Bool = true) throws {
        guard let targets = dc["target"]?.trimmingCharacters(in: .whitespaces), !targets.isEmpty else {
            throw ISCSIError.missingParameter("target")
        }
        var port = ISCSIPortal.defaultPort
        if let p = dc["port"], !p.trimmingCharacters(in: .whitespaces).isEmpty { port = try ISCSIPortal.port(p) }
        var portals: [ISCSIPortal] = []
        for t in targets.split(separator: ",") where !t.trimmingCharacters(in: .whitespaces).isEmpty {
            let portal = try ISCSIPortal(parsing: String(t), defaultPort: port)
            if !portals.contains(portal) { portals.append(portal) }
        }
        guard !portals.isEmpty else { throw ISCSIError.missingParameter("target") }
        var iqn = dc["targetIQN"]?.trimmingCharacters(in: .whitespaces)
        if iqn == "*" || iqn == "" { iqn = nil }
        if let iqn, !ISCSIName.isValid(iqn) { throw ISCSIError.badIQN(iqn) }
        if requireIQN && iqn == nil { throw ISCSIError.missingParameter("targetIQN") }
        let scsiID = dc["SCSIid"].flatMap { $0.isEmpty ? nil : $0 }
        if requireSCSIid && scsiID == nil { throw ISCSIError.missingParameter("SCSIid") }
        var lun: Int?
        if let l = dc["LUNid"], !l.isEmpty {
            guard let n = Int(l), (0...16383).contains(n) else { throw ISCSIError.lunNotFound(iqn: iqn ?? "*", lun: l) }
            lun = n
        }
        var chap: ISCSIChap?
        if let user = dc["chapuser"], !user.isEmpty {
            guard let pw = dc["chappassword"], !pw.isEmpty else { throw ISCSIError.missingParameter("chappassword") }
            chap = ISCSIChap(user: user, secret: ISCSISecret(pw))
            if let tu = dc["incoming_chapuser"], !tu.isEmpty {
                guard let tp = dc["incoming_chappassword"], !tp.isEmpty else {
                    throw ISCSIError.missingParameter("incoming_chappassword")
                }
                chap?.targetUser = tu
                chap?.targetSecret = ISCSISecret(tp)
            }
        } else if let tu = dc["incoming_chapuser"], !tu.isEmpty {
            // Mutual CHAP is the target answering the initiator's challenge: it needs one-way CHAP.
            throw ISCSIError.missingParameter("chapuser")
        }
        let local = initiatorIQN ?? dc["localIQN"].flatMap { $0.isEmpty ? nil : $0 } ?? Self.defaultInitiatorIQN
        guard ISCSIName.isValid(local) else { throw ISCSIError.badIQN(local) }
        self.init(portals: portals, iqn: iqn, scsiID: scsiID, lun: lun, chap: chap, initiatorIQN: local)
    }

    /// `<iqn> on <portal,portal> [chap(user)]`: no secret.
    public var description: String {
        var s = "\(iqn ?? "*") on \(portals.map(\.description).joined(separator: ","))"
        if let lun { s += " LUN \(lun)" }
        if let scsiID { s += " SCSIid \(scsiID)" }
        if let chap { s += " \(chap)" }
        return s
    }

    /// `text` without any CHAP secret in it.
    public func redact(_ text: String) -> String { chap?.redact(text) ?? text }
}
