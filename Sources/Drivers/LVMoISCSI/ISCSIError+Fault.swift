import ISCSI
import SMCore

/// iSCSI failures answer with the Python SM's fault for each (`ISCSIError.smapiCode`); a failure
/// that is not about the target itself (a SCSI error while the SR is used) is the command's own
/// fault carrying the iSCSI text. No text carries a CHAP secret.
extension ISCSIError: SMAPIFaultConvertible {
    /// The fault to answer when this error ends `command`.
    public func fault(for command: SMAPICommand) -> SMAPIError {
        if let entry = SMErrorCatalogue.entry(code: Int32(smapiCode)) { return SMAPIError(entry, opterr: description) }
        return SMAPIError(command.failureCode, opterr: description)
    }
}
