/// The `host.*` calls a storage driver makes: host plugins on other pool members.
extension XenAPIClient {
    /// `host.call_plugin(host, plugin, fn, args)`: runs `function` of `plugin` on `host` (xapi
    /// runs `/etc/xapi.d/plugins/<plugin>` there) and returns what it printed.
    public func hostCallPlugin(_ host: String, plugin: String, function: String,
                               arguments: [String: String]) throws(XenAPIError) -> String {
        try XenAPIValue.string(callWithSession("host.call_plugin", [.string(host), .string(plugin), .string(function),
                                                                   XenAPIValue.map(arguments)]), "host.call_plugin")
    }
}
