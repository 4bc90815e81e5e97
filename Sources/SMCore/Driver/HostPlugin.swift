import Foundation
import Logging

/// A host plugin (`/etc/xapi.d/plugins/<name>`, a link to `smdriver`) that xapi runs on a host
/// when another host asks with `host.call_plugin`. xapi hands the plugin one XML-RPC methodCall
/// as its argument (the function as the method name; params: a session, then a struct of string
/// arguments) and relays what it prints: a methodResponse of xapi's envelope, `Value` "True"
/// when done, else `Failure` with an error description.
public protocol HostPlugin {
    /// The plugin's name, as xapi calls it (and argv[0] of `smdriver` installed under it).
    var name: String { get }
    /// The log.
    var log: Logger { get }
    /// Runs `function` with `arguments` on this host and gives the plugin's value (xapi's
    /// plugins answer "True" when they have nothing to say); `HostPluginFailure` (or any error)
    /// when it cannot.
    func run(_ function: String, _ arguments: [String: String]) throws -> String
}

/// A plugin failure with xapi's error description (`XENAPI_PLUGIN_FAILURE`, function, kind, text).
public struct HostPluginFailure: Error, Sendable {
    /// The error description.
    public let description: [String]
    /// A failure described by `description`.
    public init(_ description: [String]) { self.description = description }
}

extension HostPlugin {
    /// The methodResponse text for the methodCall text `call`.
    public func handle(_ call: String) -> String {
        var function = "?"
        let envelope: XMLRPCValue
        do {
            let decoded = try XMLRPCDecoder().decodeMethodCall(Data(call.utf8))
            function = decoded.methodName
            guard decoded.params.count >= 2, let members = decoded.params[1].structMembers else {
                throw HostPluginFailure(["XENAPI_PLUGIN_FAILURE", function, "ValueError", "expected a session and an argument struct"])
            }
            var arguments: [String: String] = [:]
            for m in members { arguments[m.name] = m.value.stringValue }
            let value = try run(function, arguments)
            log.info("\(name) \(function): done")
            envelope = .struct([XMLRPCMember("Status", "Success"), XMLRPCMember("Value", .string(value))])
        } catch let failure as HostPluginFailure {
            log.error("\(name) \(function): \(failure.description)")
            envelope = Self.failure(failure.description)
        } catch {
            log.error("\(name) \(function): \(error)")
            envelope = Self.failure(["XENAPI_PLUGIN_FAILURE", function, "\(type(of: error))", "\(error)"])
        }
        return XMLRPCEncoder(style: .xapi).encode(XMLRPCMethodResponse.success(envelope))
    }

    /// xapi's failure envelope.
    static func failure(_ description: [String]) -> XMLRPCValue {
        .struct([XMLRPCMember("Status", "Failure"), XMLRPCMember("ErrorDescription", .array(description.map { .string($0) }))])
    }

    /// The uuid argument `key` (a `ValueError` failure when it is missing or not a uuid).
    public func uuid(_ arguments: [String: String], _ key: String, _ function: String) throws -> String {
        guard let u = arguments[key], VDIName.isUUID(u) else {
            throw HostPluginFailure(["XENAPI_PLUGIN_FAILURE", function, "ValueError", "\(key) must be a uuid"])
        }
        return u
    }
}
