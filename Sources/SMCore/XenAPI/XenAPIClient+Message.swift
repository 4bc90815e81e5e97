/// `message.create`: the alerts a driver raises (`POST_ATTACH_SCAN_FAILED`, `VDI_CBT_*`, …).
extension XenAPIClient {
    /// `message.create(name, priority, cls, obj_uuid, body)`: raises an alert about the `cls`
    /// object (`SR`, `VDI`, `Host`, …) with `objectUUID`; returns the message reference.
    @discardableResult
    public func messageCreate(name: String, priority: Int64, objectClass: String, objectUUID: String,
                              body: String) throws(XenAPIError) -> String {
        let params: [XMLRPCValue] = [.string(name), XenAPIValue.int64(priority), .string(objectClass),
                                     .string(objectUUID), .string(body)]
        return try XenAPIValue.string(callWithSession("message.create", params), "message.create")
    }
}
