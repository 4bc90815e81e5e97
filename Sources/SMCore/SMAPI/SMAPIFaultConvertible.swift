/// An error of a layer beneath SMCore (a driver's transport) that knows which of the Python
/// SM's faults it is when it escapes an SMAPIv1 command.
public protocol SMAPIFaultConvertible: Error {
    /// The fault to answer when this error ends `command`.
    func fault(for command: SMAPICommand) -> SMAPIError
}
