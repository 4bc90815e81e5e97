/// The text `xe` prints for a XenAPI failure, as the real xe does: for an error it knows, the
/// error's description and then one `name: value` line per parameter; for any other (or one whose
/// parameters do not match its description) `Error code:` and `Error parameters:`.
public enum XeErrorText {
    /// Known errors: description and parameter names (those of the XenAPI's published error list).
    static let known: [String: (String, [String])] = [
        "UUID_INVALID": ("The uuid you supplied was invalid.", ["type", "uuid"]),
        "HANDLE_INVALID": ("You gave an invalid object reference.  The object may have recently been deleted.  The class parameter gives the type of reference given, and the handle parameter echoes the bad value given.", ["class", "handle"]),
        "SESSION_INVALID": ("You gave an invalid session reference.  It may have been invalidated by a server restart, or timed out.  Get a new session handle, using one of the session.login_ calls.  This error does not invalidate the current connection.  The handle parameter echoes the bad value given.", ["handle"]),
        "VDI_IN_USE": ("This operation cannot be performed because this VDI is in use by some other operation", ["vdi", "operation"]),
        "VDI_INCOMPATIBLE_TYPE": ("This operation cannot be performed because the specified VDI is of an incompatible type (eg: an HA statefile cannot be attached to a guest)", ["vdi", "type"]),
        "SR_HAS_PBD": ("The SR is still connected to a host via a PBD. It cannot be destroyed or forgotten.", ["sr"]),
        "SR_NOT_EMPTY": ("The SR operation cannot be performed because the SR is not empty.", []),
        "SR_NO_PBDS": ("The SR has no attached PBDs", ["sr"]),
        "SR_UNKNOWN_DRIVER": ("The SR could not be connected because the driver was not recognised.", ["driver"]),
        "OTHER_OPERATION_IN_PROGRESS": ("Another operation involving the object is currently in progress", ["class", "object", "operation_type"]),
        "OPERATION_NOT_ALLOWED": ("You attempted an operation that was not allowed.", ["reason"]),
        "DEVICE_ALREADY_ATTACHED": ("The device is already attached to a VM", ["device"]),
        "DEVICE_ALREADY_DETACHED": ("The device is not currently attached", ["device"]),
        "DEVICE_ALREADY_EXISTS": ("A device with the name given already exists on the selected VM", ["device"]),
        "MAP_DUPLICATE_KEY": ("You tried to add a key-value pair to a map, but that key is already there.", ["type", "param_name", "uuid", "key"]),
        "FIELD_TYPE_ERROR": ("The value specified is of the wrong type", ["field"]),
        "INVALID_VALUE": ("The value given is invalid", ["field", "value"]),
        "MESSAGE_METHOD_UNKNOWN": ("You tried to call a method that does not exist.  The method name that you used is echoed.", ["method"]),
        "MESSAGE_PARAMETER_COUNT_MISMATCH": ("You tried to call a method with the incorrect number of parameters.  The fully-qualified method name that you used, and the number of received and expected parameters are returned.", ["method", "expected", "received"]),
        "TASK_CANCELLED": ("The request was asynchronously canceled.", ["task"]),
        "SR_OPERATION_NOT_SUPPORTED": ("The SR backend does not support the operation (check the SR's allowed operations)", ["sr"]),
    ]

    /// The lines printed for `failure` (without a final newline).
    public static func message(_ failure: APIFailure) -> String {
        let params = Array(failure.errorDescription.dropFirst())
        if let (description, names) = known[failure.code], names.count == params.count {
            return ([description] + zip(names, params).map { "\($0): \($1)" }).joined(separator: "\n")
        }
        return "Error code: \(failure.code)\nError parameters: \(params.joined(separator: ", "))"
    }
}
