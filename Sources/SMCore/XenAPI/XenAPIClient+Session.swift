/// Logging in and out, for work that outlives the session xapi hands a driver (the collector).
extension XenAPIClient {
    /// `session.login_with_password`: logs in, makes the new session the one the typed helpers
    /// send, and returns its reference. The password is sent to xapi only, never logged.
    @discardableResult
    public func sessionLoginWithPassword(username: String, password: String, version: String = "1.0",
                                         originator: String = "SM") throws(XenAPIError) -> String {
        let params: [XMLRPCValue] = [.string(username), .string(password), .string(version), .string(originator)]
        let ref = try XenAPIValue.string(call("session.login_with_password", params), "session.login_with_password")
        sessionRef = ref
        return ref
    }

    /// `session.logout`: ends the current session and forgets it.
    public func sessionLogout() throws(XenAPIError) {
        _ = try callWithSession("session.logout", [])
        sessionRef = XenAPIClient.nullRef
    }
}
