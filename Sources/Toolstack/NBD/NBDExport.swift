/// Where an NBD export is served on this host: the datapath's unix socket and its export name
/// (from `params_nbd` = `nbd:unix:<socket>:exportname=<name>`), and what to do when the
/// connection ends (unplug a VBD made for it).
public struct NBDExport: Sendable {
    /// The datapath's NBD unix socket.
    public var socketPath: String
    /// The export name the datapath serves.
    public var exportName: String
    /// Called once when the connection that asked for the export ends.
    public var release: @Sendable () -> Void = {}

    /// The export named by a `params_nbd` string; nil when it is not of that form.
    public init?(paramsNBD: String) {
        guard paramsNBD.hasPrefix("nbd:unix:") else { return nil }
        let rest = paramsNBD.dropFirst("nbd:unix:".count)
        guard let marker = rest.range(of: ":exportname=") else { return nil }
        socketPath = String(rest[..<marker.lowerBound])
        exportName = String(rest[marker.upperBound...])
        guard !socketPath.isEmpty else { return nil }
    }
}
