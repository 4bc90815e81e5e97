import Foundation
import Logging

/// The `datapath-mirror` host plugin (a link to `smdriver`, beside `tapdisk-pause`): what the
/// toolstack has run on the host where a VDI is active to migrate it live to another SR there
/// (the part of xapi's storage migration that drives tapdisk's mirror). `start` mirrors every
/// change of VDI `vdi_uuid` (SR `sr_uuid`) to the datapath of `dest_vdi_uuid` (SR
/// `dest_sr_uuid`); `stop` gives the mirror up; `switch` moves the source's datapath, clients
/// and all, onto the destination leaf (driver `dest_driver`). `layers` gives the footer uuids
/// of the chain the VDI's datapath has open, leaf first and space-separated (what its
/// `qemu:allocation-depth` map counts; empty while paused): the delta copier compares two
/// VDIs' chains with it.
public struct DatapathMirrorPlugin: HostPlugin {
    /// The plugin's name.
    public static let name = "datapath-mirror"
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

    /// Starts, stops or switches a mirror, or gives a datapath's layers.
    public func run(_ function: String, _ arguments: [String: String]) throws -> String {
        let sr = try uuid(arguments, "sr_uuid", function), vdi = try uuid(arguments, "vdi_uuid", function)
        let manager = DatapathManager(run: run, log: log)
        switch function {
        case "start":
            try manager.startMirror(sr: sr, vdi: vdi, destinationSR: try uuid(arguments, "dest_sr_uuid", function),
                                    destinationVDI: try uuid(arguments, "dest_vdi_uuid", function))
        case "stop":
            try manager.stopMirror(sr: sr, vdi: vdi)
        case "switch":
            guard let driver = arguments["dest_driver"], !driver.isEmpty, driver.allSatisfy({ $0.isLetter || $0.isNumber }) else {
                throw HostPluginFailure(["XENAPI_PLUGIN_FAILURE", function, "ValueError", "dest_driver must name an SR type"])
            }
            try manager.switchOver(sr: sr, vdi: vdi, destinationDriver: driver.lowercased(),
                                   destinationSR: try uuid(arguments, "dest_sr_uuid", function),
                                   destinationVDI: try uuid(arguments, "dest_vdi_uuid", function))
        case "layers":
            return try manager.layers(sr: sr, vdi: vdi).joined(separator: " ")
        default:
            throw HostPluginFailure(["UNKNOWN_XENAPI_PLUGIN_FUNCTION", function])
        }
        return "True"
    }
}
