import Foundation

/// What went wrong reaching or using an iSCSI LUN, typed so that a driver answers with the
/// Python SM's fault codes (`smapiCode`, `smapiName`, from `XE_SR_ERRORCODES.xml`). No case
/// carries a CHAP secret: texts from libiscsi are redacted before they are stored.
public enum ISCSIError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A required device-config key is absent (`target` 95, `targetIQN` 96, `SCSIid` 107).
    case missingParameter(String)
    /// `target` names no usable host (or the host cannot be resolved): 140 `DNSError`.
    case badTarget(String)
    /// `port` (or a `:port` suffix) is not a number in 1...65535: 142 `ISCSIPort`.
    case badPort(String)
    /// The target or initiator IQN is not a valid iSCSI name: 106 `InvalidIQN`.
    case badIQN(String)
    /// Nothing answers on the portal (refused, unroutable, timed out): 141 `ISCSITarget`.
    case unreachable(portal: String, reason: String)
    /// The target refused the login (wrong or missing CHAP credentials, initiator not allowed):
    /// 68 `ISCSILogin`.
    case login(portal: String, iqn: String, reason: String)
    /// The portal does not serve a target with that IQN: 96 `ConfigTargetIQNMissing`.
    case targetNotFound(portal: String, iqn: String)
    /// SendTargets discovery failed: 83 `ISCSIDiscovery`.
    case discovery(portal: String, reason: String)
    /// No LUN of the target has the wanted number or SCSI id: 107 `ConfigSCSIid`.
    case lunNotFound(iqn: String, lun: String)
    /// A path leads to a LUN with another SCSI id than the one asked for: 107 `ConfigSCSIid`.
    case scsiIDMismatch(expected: String, found: String)
    /// The LUN is smaller than what is needed: 44 `SRNoSpace`.
    case lunTooSmall(size: UInt64, needed: UInt64)
    /// Every path stopped answering during `operation` and the hold policy gave up: 141
    /// `ISCSITarget`.
    case transport(operation: String, reason: String)
    /// The LUN answered `operation` with a CHECK CONDITION or another non-GOOD status: 200 `EIO`
    /// (a write-protected LUN: 461 `SharedFileSystemNoWrite`).
    case scsi(operation: String, status: Int, senseKey: Int, ascq: Int)
    /// What this store or target cannot do (resize of a LUN): 38 `Unimplemented`.
    case unsupported(String)

    /// One line for an administrator (never a secret).
    public var description: String {
        switch self {
        case let .missingParameter(k): return "the request is missing the \(k) parameter"
        case let .badTarget(t): return "bad or unresolvable iSCSI target address '\(t)'"
        case let .badPort(p): return "incorrect iSCSI port '\(p)': must be a number between 1 and 65535"
        case let .badIQN(q): return "'\(q)' is not a valid iSCSI name (iqn.YYYY-MM.domain[:name] or eui.<16 hex digits>)"
        case let .unreachable(p, r): return "no iSCSI service answers on \(p): \(r)"
        case let .login(p, q, r): return "login to \(q) on \(p) failed (check the initiator's access and the CHAP credentials): \(r)"
        case let .targetNotFound(p, q): return "the portal \(p) has no target \(q)"
        case let .discovery(p, r): return "iSCSI discovery on \(p) failed: \(r)"
        case let .lunNotFound(q, l): return "target \(q) has no LUN \(l)"
        case let .scsiIDMismatch(e, f): return "the LUN's SCSI id is \(f), not \(e)"
        case let .lunTooSmall(s, n): return "the LUN holds \(s) bytes; \(n) are needed"
        case let .transport(op, r): return "\(op): the iSCSI target stopped answering: \(r)"
        case let .scsi(op, st, k, a):
            return "\(op) failed: SCSI status 0x\(String(st, radix: 16)), sense key \(SCSISense.keyName(k)) (\(k)), ASC/ASCQ 0x\(String(format: "%04x", a))"
        case let .unsupported(w): return w
        }
    }

    /// The SMAPIv1 error code (`SR_BACKEND_FAILURE_<n>`) the Python SM answers with.
    public var smapiCode: Int {
        switch self {
        case let .missingParameter(k):
            switch k {
            case "target": return 95
            case "targetIQN": return 96
            case "SCSIid": return 107
            default: return 115
            }
        case .badTarget: return 140
        case .badPort: return 142
        case .badIQN: return 106
        case .unreachable, .transport: return 141
        case .login: return 68
        case .targetNotFound: return 96
        case .discovery: return 83
        case .lunNotFound, .scsiIDMismatch: return 107
        case .lunTooSmall: return 44
        case let .scsi(_, _, key, _): return key == SCSISense.dataProtect ? 461 : 200
        case .unsupported: return 38
        }
    }

    /// The name of `smapiCode` in the error table.
    public var smapiName: String {
        switch smapiCode {
        case 95: "ConfigTargetMissing"
        case 96: "ConfigTargetIQNMissing"
        case 107: "ConfigSCSIid"
        case 115: "ConfigParamsMissing"
        case 140: "DNSError"
        case 142: "ISCSIPort"
        case 106: "InvalidIQN"
        case 141: "ISCSITarget"
        case 68: "ISCSILogin"
        case 83: "ISCSIDiscovery"
        case 44: "SRNoSpace"
        case 461: "SharedFileSystemNoWrite"
        case 38: "Unimplemented"
        default: "EIO"
        }
    }

    /// Whether the failure is a lost or unanswered connection (worth a reconnection), not an
    /// answer that says no.
    public var isTransport: Bool {
        switch self {
        case .unreachable, .transport: true
        default: false
        }
    }
}
