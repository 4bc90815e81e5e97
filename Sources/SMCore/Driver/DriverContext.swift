import Foundation
import Logging

/// Everything one SMAPIv1 call gives a driver: the request, the host's run directory, the
/// callbacks into the toolstack and the log.
public struct DriverContext {
    /// The parsed request.
    public var request: SMAPIRequest
    /// The host's run directory.
    public var run: RunDirectory
    /// XenAPI callbacks (no-ops without a session).
    public var callbacks: any XenAPICallbacks
    /// The log, tagged with the SR and VDI.
    public var log: Logger
    /// What the call asked the toolstack once and keeps (shared by the context's copies).
    private let asked = AskedOnce()

    /// A context for `request`.
    public init(request: SMAPIRequest, run: RunDirectory, callbacks: any XenAPICallbacks, log: Logger) {
        self.request = request
        self.run = run
        self.callbacks = callbacks
        self.log = log
    }

    /// `sr_uuid`, required for SR-scoped calls (143 when absent or not a uuid).
    public func srUUID() throws -> String {
        guard let u = request.srUUID, VDIName.isUUID(u) else {
            throw SMAPIError(SMErrorCode.BadRequest)
        }
        return u
    }

    /// A device_config value.
    public func config(_ key: String) -> String? { request.deviceConfig[key] }

    /// The SR's other_config as recorded at its attach, for contexts rebuilt from a plug record
    /// (nil: ask the toolstack).
    public var recordedOtherConfig: [String: String]?

    /// The SR's other_config: as recorded at attach, else as the request carries it
    /// (`vdi_attach_from_config`), else through XenAPI (empty without a session or when the
    /// toolstack cannot say).
    public func srOtherConfig() -> [String: String] {
        recordedOtherConfig ?? request.srOtherConfig?.dictionary
            ?? asked.otherConfig { (try? callbacks.srOtherConfig()) ?? [:] }
    }

    /// Whether the caller serves a running disk (the data path): network drivers then hold
    /// requests through a server outage, as the SR says, instead of failing them.
    public var servesDataPath = false
}

/// Answers of the toolstack one call needs several times (every `container(_:)` of a network
/// driver reads the SR's other_config): asked the first time, kept for the call.
private final class AskedOnce: @unchecked Sendable {
    private let lock = NSLock()
    private var other: [String: String]?

    /// The SR's other_config, from `ask` the first time.
    func otherConfig(_ ask: () -> [String: String]) -> [String: String] {
        lock.withLock {
            if let other { return other }
            let answer = ask()
            other = answer
            return answer
        }
    }
}
