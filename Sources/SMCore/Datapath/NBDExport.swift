/// The one export a datapath serves: a VDI's chain under its uuid (the empty name, the default
/// export, means the same disk).
public struct NBDExport: Sendable, Equatable {
    /// The export name (the VDI uuid).
    public var name: String
    /// Free text shown by `nbdinfo --list`.
    public var description: String
    /// Whether writes are refused (EPERM) and the READ_ONLY flag is sent.
    public var readOnly: Bool

    /// An export called `name`.
    public init(name: String, description: String = "", readOnly: Bool = false) {
        self.name = name
        self.description = description
        self.readOnly = readOnly
    }

    /// Whether a client asking for `requested` means this export.
    public func matches(_ requested: String) -> Bool { requested.isEmpty || requested == name }

    /// Transmission flags for a connection (SEND_DF only with structured replies). Every
    /// connection shares one chain thread and FLUSH syncs the leaf file, so CAN_MULTI_CONN holds.
    public func transmissionFlags(structuredReplies: Bool) -> UInt16 {
        typealias F = NBD.TransmissionFlag
        var f = F.hasFlags | F.sendFlush | F.canMultiConn
        if readOnly { f |= F.readOnly } else { f |= F.sendFUA | F.sendTrim | F.sendWriteZeroes }
        if structuredReplies { f |= F.sendDF }
        return f
    }
}
