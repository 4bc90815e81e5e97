/// What sr_probe needs from a portal without an SR: the targets it lists (SendTargets) and the
/// disks a target offers (REPORT LUNS, identity and size of each).
public enum ISCSIDiscovery {
    /// SendTargets on each portal of `target` (a discovery session, CHAP as configured); the
    /// targets of all portals that answer, merged by IQN. Throws the first portal's error when
    /// none answers (`.unreachable`, `.login`, `.discovery`).
    public static func sendTargets(_ target: ISCSITarget) throws -> [ISCSIDiscoveredTarget] {
        var merged: [ISCSIDiscoveredTarget] = []
        var failure: ISCSIError?
        var answered = false
        for path in target.portals.indices {
            let c = ISCSIConnection(target: target, path: path)
            defer { c.disconnect() }
            do {
                try c.connect(discovery: true)
                for t in try c.sendTargets() {
                    if let i = merged.firstIndex(where: { $0.iqn == t.iqn }) {
                        merged[i].portals += t.portals.filter { !merged[i].portals.contains($0) }
                    } else {
                        merged.append(t)
                    }
                }
                answered = true
            } catch let e as ISCSIError {
                if failure == nil { failure = e }
            }
        }
        if !answered, let failure { throw failure }
        return merged
    }

    /// The disks `target.iqn` offers on its first portal that lets this initiator log in.
    public static func disks(_ target: ISCSITarget) throws -> [ISCSILUNInfo] {
        var failure: ISCSIError?
        for path in target.portals.indices {
            let c = ISCSIConnection(target: target, path: path)
            defer { c.disconnect() }
            do {
                try c.connect()
                return try c.disks()
            } catch let e as ISCSIError {
                if failure == nil || (failure!.isTransport && !e.isTransport) { failure = e }
            }
        }
        throw failure ?? ISCSIError.missingParameter("target")
    }
}
