/// The `host.*` calls a storage driver makes: host plugins on other pool members, and the
/// host's `other_config` (initiator name, multipath counts).
extension XenAPIClient {
    /// `host.call_plugin(host, plugin, fn, args)`: runs `function` of `plugin` on `host` (xapi
    /// runs `/etc/xapi.d/plugins/<plugin>` there) and returns what it printed.
    public func hostCallPlugin(_ host: String, plugin: String, function: String,
                               arguments: [String: String]) throws(XenAPIError) -> String {
        try XenAPIValue.string(callWithSession("host.call_plugin", [.string(host), .string(plugin), .string(function),
                                                                   XenAPIValue.map(arguments)]), "host.call_plugin")
    }

    /// `host.get_other_config`.
    public func hostGetOtherConfig(_ host: String) throws(XenAPIError) -> [String: String] {
        try XenAPIValue.stringMap(callWithSession("host.get_other_config", [.string(host)]), "host.get_other_config")
    }

    /// `host.remove_from_other_config` (no failure when the key is absent).
    public func hostRemoveFromOtherConfig(_ host: String, key: String) throws(XenAPIError) {
        _ = try callWithSession("host.remove_from_other_config", [.string(host), .string(key)])
    }

    /// `host.add_to_other_config` (failure `MAP_DUPLICATE_KEY` when `key` is already there).
    public func hostAddToOtherConfig(_ host: String, key: String, value: String) throws(XenAPIError) {
        _ = try callWithSession("host.add_to_other_config", [.string(host), .string(key), .string(value)])
    }
}
