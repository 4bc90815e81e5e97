import Foundation
import Logging

/// A collector started outside any SMAPI call (`smdriver gc`, a background kick): it reaches the
/// SR through the record its attach left (`SRPlugRecord`), logs in to xapi itself as the Python
/// SM's collector does (root over the local socket, or `SWIFTSM_XAPI_URL`), and takes its
/// switches from the SR's other_config (`gc`, `coalesce`, `leaf-coalesce`,
/// `gc-pause-budget` seconds, `gc-bandwidth` MB/s) unless the command line set them, and the
/// leaves it must not merge from the VDIs' records.
extension GarbageCollector {
    /// Why a collector cannot start.
    public enum SetupError: Error, CustomStringConvertible {
        /// The SR is not attached on this host.
        case notAttached(String)
        /// SR other_config says `gc=false`.
        case disabled(String)
        /// This host is not the SR's master (its attach said `SRmaster=false`).
        case notMaster(String)

        /// A readable description.
        public var description: String {
            switch self {
            case let .notAttached(sr): "SR \(sr) is not attached on this host (no \(SRPlugRecord.path(run: .current, sr: sr)))"
            case let .disabled(sr): "garbage collection is disabled on SR \(sr) (other-config:gc=false)"
            case let .notMaster(sr): "this host is not the master of SR \(sr): its collector runs on the master"
            }
        }
    }

    /// A collector for attached SR `sr`, whose container `container` rebuilds from the SR's plug
    /// record (the driver's business: the collector knows containers, not drivers). `overrides`
    /// are the options the caller set explicitly (they win over the SR's other_config).
    public static func forAttachedSR(_ sr: String, container: (SRPlugRecord) throws -> any VolumeContainer,
                                     run: RunDirectory, log: Logger,
                                     options: GCOptions, overrides: Set<PartialKeyPath<GCOptions>> = []) throws -> GarbageCollector {
        guard let record = SRPlugRecord.read(run: run, sr: sr) else { throw SetupError.notAttached(sr) }
        guard record.deviceConfig["SRmaster"] != "false" else { throw SetupError.notMaster(sr) }
        var callbacks: any XenAPICallbacks = NoCallbacks()
        var options = options
        do {
            let client = try XenAPIClient(sessionRef: XenAPIClient.nullRef)
            try client.sessionLoginWithPassword(username: "root", password: "", originator: "SMGC")
            let srRef = try client.srGetByUUID(sr)
            callbacks = XenAPICallbackClient(client: client, srRef: srRef, srUUID: sr)
            let config = try client.srGetOtherConfig(srRef)
            if config["gc"] == "false" { throw SetupError.disabled(sr) }
            if config["coalesce"] == "false" && !overrides.contains(\GCOptions.coalesce) { options.coalesce = false }
            if config["leaf-coalesce"] == "false" && !overrides.contains(\GCOptions.leafCoalesce) { options.leafCoalesce = false }
            if let b = config["gc-pause-budget"].flatMap(Double.init), b > 0, !overrides.contains(\GCOptions.pauseBudget) {
                options.pauseBudget = b
            }
            if let m = config["gc-bandwidth"].flatMap(Double.init), m > 0, !overrides.contains(\GCOptions.bandwidthLimit) {
                options.bandwidthLimit = m * 1e6
            }
            // Leaves the Python SM never merges: other-config:leaf-coalesce=false, reset on boot, cached.
            for r in try client.vdiGetAllRecordsWhere("field \"SR\" = \"\(srRef)\"").values {
                let field = { (name: String) in r.fields.first { $0.name == name }?.value }
                if r.otherConfig["leaf-coalesce"] == "false" || field("on_boot")?.stringValue == "reset"
                    || field("allow_caching")?.boolValue == true {
                    options.leafCoalesceExcluded.insert(r.uuid)
                }
            }
        } catch let e as SetupError {
            throw e
        } catch {
            log.info("GC: no XenAPI session (\(error)); records will follow at the next scan")
        }
        let repo = VHDRepository(container: try container(record))
        return GarbageCollector(sr: sr, repo: repo, run: run, callbacks: callbacks, log: log, options: options)
    }
}
