import FakeXapi
import Foundation
import SMCore

extension TestSR {
    /// What the fake xapi runs for `host.call_plugin`: the plugin as xapi runs it on that host
    /// (`smdriver` as `/etc/xapi.d/plugins/<plugin>` with the host's run directory, one
    /// methodCall of a session and the arguments), answering its `Value` or its error
    /// description. `hosts` maps host refs to run directories; other hosts are `HANDLE_INVALID`.
    func hostPlugins(on hosts: [String: String]) -> @Sendable (String, String, String, [String: String]) -> Result<String, FakeXapiPluginError> {
        let environment = self.environment, session = fake.sessionRef
        return { host, plugin, function, arguments in
            guard let runDir = hosts[host] else { return .failure(FakeXapiPluginError(["HANDLE_INVALID", "host", host])) }
            let call = XMLRPCMethodCall(methodName: function, params: [.string(session),
                                                                      .struct(arguments.sorted { $0.key < $1.key }.map { XMLRPCMember($0.key, .string($0.value)) })])
            var env = environment
            env["SWIFTSM_RUN_DIR"] = runDir
            guard let r = try? Smdriver.run([XMLRPCEncoder().encode(call)], driver: plugin, environment: env),
                  let members = (try? XMLRPCDecoder().decodeMethodResponse(r.stdout))?.value?.structMembers else {
                return .failure(FakeXapiPluginError(["XENAPI_PLUGIN_FAILURE", function, "no answer"]))
            }
            let fields = Dictionary(members.map { ($0.name, $0.value) }, uniquingKeysWith: { a, _ in a })
            if fields["Status"]?.stringValue == "Success", let value = fields["Value"]?.stringValue { return .success(value) }
            var description = ["XENAPI_PLUGIN_FAILURE"]
            if case let .array(items)? = fields["ErrorDescription"] { description = items.compactMap(\.stringValue) }
            return .failure(FakeXapiPluginError(description))
        }
    }
}
