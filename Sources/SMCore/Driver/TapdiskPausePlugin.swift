import Foundation
import Logging

/// The `tapdisk-pause` host plugin (`/etc/xapi.d/plugins/tapdisk-pause`, a link to `smdriver`):
/// what the SR master has xapi run, through `host.call_plugin`, on every host where a VDI is
/// active, around a change of the VDI's chain (snapshot, clone, resize, compose). `pause`
/// holds the VDI's data path on this host (flushed, chain closed), `unpause` reopens it on the
/// leaf as it is now, `refresh` reopens it without holding. Arguments: `sr_uuid`, `vdi_uuid`
/// (and xapi's `failfast`, ...).
public struct TapdiskPausePlugin: HostPlugin {
    /// The plugin's name, as xapi calls it.
    public static let name = "tapdisk-pause"
    /// The plugin's name.
    public var name: String { Self.name }

    /// This host's run directory.
    public let run: RunDirectory
    /// The log.
    public let log: Logger

    /// The plugin on this host.
    public init(run: RunDirectory, log: Logger) {
        self.run = run
        self.log = log
    }

    /// Pauses, unpauses or refreshes the VDI's data path on this host.
    public func run(_ function: String, _ arguments: [String: String]) throws -> String {
        let sr = try uuid(arguments, "sr_uuid", function), vdi = try uuid(arguments, "vdi_uuid", function)
        let manager = DatapathManager(run: run, log: log)
        switch function {
        case "pause": try manager.pause(sr: sr, vdi: vdi)
        case "unpause": try manager.unpause(sr: sr, vdi: vdi)
        case "refresh": try manager.refresh(sr: sr, vdi: vdi)
        default: throw HostPluginFailure(["UNKNOWN_XENAPI_PLUGIN_FUNCTION", function])
        }
        return "True"
    }
}
