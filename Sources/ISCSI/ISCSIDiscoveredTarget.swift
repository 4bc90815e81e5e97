/// One target a portal lists in answer to SendTargets: its IQN and the portals it can be
/// reached on (`host:port,tpgt` as the target wrote them).
public struct ISCSIDiscoveredTarget: Sendable, Hashable {
    /// The target's name.
    public var iqn: String
    /// Its portals, `address:port,portal-group-tag`.
    public var portals: [String]

    /// A discovered target.
    public init(iqn: String, portals: [String]) {
        self.iqn = iqn
        self.portals = portals
    }

    /// The portals as addresses (the portal group tag dropped; an unparsable one skipped).
    public var addresses: [ISCSIPortal] {
        portals.compactMap { p in
            let address = p.split(separator: ",", maxSplits: 1).first.map(String.init) ?? p
            return try? ISCSIPortal(parsing: address)
        }
    }
}
