/// SCSI status and sense key values this library acts on (SPC-4).
public enum SCSISense {
    /// GOOD status.
    public static let good = 0
    /// CHECK CONDITION status (sense data follows).
    public static let checkCondition = 2
    /// BUSY status.
    public static let busy = 8
    /// TASK SET FULL status.
    public static let taskSetFull = 0x28
    /// Sense key NOT READY.
    public static let notReady = 2
    /// Sense key ILLEGAL REQUEST.
    public static let illegalRequest = 5
    /// Sense key UNIT ATTENTION (reset, LUN inventory or capacity changed).
    public static let unitAttention = 6
    /// Sense key DATA PROTECT (write-protected).
    public static let dataProtect = 7
    /// Sense key ABORTED COMMAND.
    public static let abortedCommand = 0xB

    /// The standard name of sense key `key`.
    public static func keyName(_ key: Int) -> String {
        let names = ["NO SENSE", "RECOVERED ERROR", "NOT READY", "MEDIUM ERROR", "HARDWARE ERROR", "ILLEGAL REQUEST",
                     "UNIT ATTENTION", "DATA PROTECT", "BLANK CHECK", "VENDOR SPECIFIC", "COPY ABORTED", "ABORTED COMMAND",
                     "RESERVED", "VOLUME OVERFLOW", "MISCOMPARE", "COMPLETED"]
        return (0..<names.count).contains(key) ? names[key] : "UNKNOWN"
    }
}
