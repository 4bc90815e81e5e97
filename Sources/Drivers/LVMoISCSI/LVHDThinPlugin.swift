import Foundation
import Logging
import SMCore

/// The `lvhd-thin` host plugin (`/etc/xapi.d/plugins/lvhd-thin`, a link to `smdriver`), run on
/// the SR master for the other hosts of a pool, as the Python SM's: only the master resizes LVs,
/// so a host activating a leaf of a thin LVHD SR asks it to inflate the LV (`attach`), and the
/// last deactivation asks it to deflate it again (`detach`). Arguments `srUuid`, `vdiUuid`. The
/// master reaches the SR through its own plug record, under the SR lock.
public struct LVHDThinPlugin: HostPlugin {
    /// The plugin's name, as xapi calls it.
    public static let name = "lvhd-thin"
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

    /// Inflates (`attach`) or deflates (`detach`) the VDI's leaf.
    public func run(_ function: String, _ arguments: [String: String]) throws -> String {
        guard function == "attach" || function == "detach" else { throw HostPluginFailure(["UNKNOWN_XENAPI_PLUGIN_FUNCTION", function]) }
        let sr = try uuid(arguments, "srUuid", function), vdi = try uuid(arguments, "vdiUuid", function)
        let lock = run.srLock(sr)
        try lock.lock(timeout: 300)
        defer { lock.unlock() }
        guard let container = try DriverContext.container(of: sr, driver: LVMoISCSIDriver(), run: run, log: log) as? LVHDContainer,
              container.group.commitsAllowed else {
            throw HostPluginFailure(["XENAPI_PLUGIN_FAILURE", function, "LVMMaster", "this host is not the master of SR \(sr)"])
        }
        let lv = container.naming.volume(vdi)
        if function == "attach" {
            try VHDRepository(container: container).prepareLeaf(vdi)
        } else if container.exists(lv), try !container.isReadOnly(lv) {
            try container.deflateLeaf(lv)
        }
        return "True"
    }
}
