import Foundation
import Logging

/// The `tapdisk-pause` host plugin (`/etc/xapi.d/plugins/tapdisk-pause`, a link to `smdriver`):
/// what the SR master has xapi run, through `host.call_plugin`, on every host where a VDI is
/// active, around a change of the VDI's chain (snapshot, clone, resize, compose). `pause`
/// holds the VDI's data path on this host (flushed, chain closed), `unpause` reopens it on the
/// leaf as it is now, `refresh` reopens it without holding. xapi hands the plugin one XML-RPC
/// methodCall as its argument (params: session, then a struct with `sr_uuid`, `vdi_uuid`,
/// `failfast`, ...) and relays what it prints: a methodResponse of xapi's envelope,
/// `Value` "True" when done, else `Failure` with an error description.
public struct TapdiskPausePlugin {
    /// The plugin's name, as xapi calls it (and argv[0] of `smdriver` installed under it).
    public static let name = "tapdisk-pause"

    /// This host's run directory.
    public let run: RunDirectory
    /// The log.
    public let log: Logger

    /// The plugin on this host.
    public init(run: RunDirectory, log: Logger) {
        self.run = run
        self.log = log
    }

    /// The methodResponse text for the methodCall text `call`.
    public func handle(_ call: String) -> String {
        var function = "?"
        let envelope: XMLRPCValue
        do {
            let decoded = try XMLRPCDecoder().decodeMethodCall(Data(call.utf8))
            function = decoded.methodName
            guard decoded.params.count >= 2, let members = decoded.params[1].structMembers else {
                throw PluginFailure(["XENAPI_PLUGIN_FAILURE", function, "ValueError", "expected a session and an argument struct"])
            }
            var arguments: [String: String] = [:]
            for m in members { arguments[m.name] = m.value.stringValue }
            guard let sr = arguments["sr_uuid"], let vdi = arguments["vdi_uuid"], VDIName.isUUID(sr), VDIName.isUUID(vdi) else {
                throw PluginFailure(["XENAPI_PLUGIN_FAILURE", function, "ValueError", "sr_uuid and vdi_uuid must be uuids"])
            }
            let manager = DatapathManager(run: run, log: log)
            switch function {
            case "pause": try manager.pause(sr: sr, vdi: vdi)
            case "unpause": try manager.unpause(sr: sr, vdi: vdi)
            case "refresh": try manager.refresh(sr: sr, vdi: vdi)
            default: throw PluginFailure(["UNKNOWN_XENAPI_PLUGIN_FUNCTION", function])
            }
            log.info("\(Self.name) \(function) \(vdi): done")
            envelope = .struct([XMLRPCMember("Status", "Success"), XMLRPCMember("Value", "True")])
        } catch let failure as PluginFailure {
            log.error("\(Self.name) \(function): \(failure.description)")
            envelope = Self.failure(failure.description)
        } catch {
            log.error("\(Self.name) \(function): \(error)")
            envelope = Self.failure(["XENAPI_PLUGIN_FAILURE", function, "\(type(of: error))", "\(error)"])
        }
        return XMLRPCEncoder(style: .xapi).encode(XMLRPCMethodResponse.success(envelope))
    }

    /// xapi's failure envelope.
    static func failure(_ description: [String]) -> XMLRPCValue {
        .struct([XMLRPCMember("Status", "Failure"), XMLRPCMember("ErrorDescription", .array(description.map { .string($0) }))])
    }

    /// A failure with xapi's error description.
    struct PluginFailure: Error {
        let description: [String]
        init(_ description: [String]) { self.description = description }
    }
}
