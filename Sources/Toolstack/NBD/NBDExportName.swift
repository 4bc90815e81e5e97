/// An export name as `VDI.get_nbd_info` hands it out (xapi's form): `/<vdi uuid>?session_id=<ref>`.
public struct NBDExportName: Sendable, Hashable {
    /// The VDI's uuid.
    public var vdiUUID: String
    /// The session reference the client connects under.
    public var session: String

    /// Parses `name`; nil when it is not of that form.
    public init?(_ name: String) {
        guard name.hasPrefix("/"), let q = name.firstIndex(of: "?") else { return nil }
        let uuid = String(name[name.index(after: name.startIndex)..<q])
        let query = name[name.index(after: q)...]
        guard !uuid.isEmpty, !uuid.contains("/"), query.hasPrefix("session_id=") else { return nil }
        let session = String(query.dropFirst("session_id=".count))
        guard !session.isEmpty, !session.contains("&") else { return nil }
        vdiUUID = uuid
        self.session = session
    }
}
