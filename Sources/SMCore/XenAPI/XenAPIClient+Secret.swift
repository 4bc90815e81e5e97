/// The `secret.*` calls: device-config keys ending in `_secret` name a secret object whose value
/// is the password, so that the password itself is never stored in a PBD record.
extension XenAPIClient {
    /// `secret.get_by_uuid`.
    public func secretGetByUUID(_ uuid: String) throws(XenAPIError) -> String {
        try XenAPIValue.string(callWithSession("secret.get_by_uuid", [.string(uuid)]), "secret.get_by_uuid")
    }

    /// `secret.get_value`.
    public func secretGetValue(_ secret: String) throws(XenAPIError) -> String {
        try XenAPIValue.string(callWithSession("secret.get_value", [.string(secret)]), "secret.get_value")
    }
}
