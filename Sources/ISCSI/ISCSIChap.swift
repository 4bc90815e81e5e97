/// CHAP credentials for a login: the initiator's user and secret (`chapuser`, `chappassword`)
/// and, for mutual CHAP, the ones the target must prove it knows (`incoming_chapuser`,
/// `incoming_chappassword`).
public struct ISCSIChap: Sendable, Hashable, CustomStringConvertible {
    /// The user name the initiator logs in as.
    public var user: String
    /// The initiator's secret.
    public var secret: ISCSISecret
    /// The target's user name for mutual CHAP (nil: one-way CHAP).
    public var targetUser: String?
    /// The target's secret for mutual CHAP.
    public var targetSecret: ISCSISecret?

    /// One-way CHAP as `user`, optionally mutual with `targetUser`/`targetSecret`.
    public init(user: String, secret: ISCSISecret, targetUser: String? = nil, targetSecret: ISCSISecret? = nil) {
        self.user = user
        self.secret = secret
        self.targetUser = targetUser
        self.targetSecret = targetSecret
    }

    /// Whether the target must authenticate itself too.
    public var isMutual: Bool { targetUser != nil }

    /// `chap(user)` or `chap(user, mutual target-user)`: the user names, no secret.
    public var description: String {
        targetUser.map { "chap(\(user), mutual \($0))" } ?? "chap(\(user))"
    }

    /// `text` with both secrets removed.
    public func redact(_ text: String) -> String {
        let once = secret.redact(text)
        return targetSecret?.redact(once) ?? once
    }
}
