import Foundation

/// The per-VDI data path steps every VHD driver shares unless it says otherwise: a writable leaf
/// is prepared for growth through the container (LVs inflate; files: nothing) and served by one
/// datapath process per active VDI, which rebuilds the container from the SR's plug record.
extension SRDriver {
    /// Prepares a writable leaf, then starts (or counts) the VDI's datapath.
    public func activate(_ context: DriverContext, vdi: String, writable: Bool) throws {
        if writable { try VHDRepository(container: try container(context)).prepareLeaf(vdi) }
        try DatapathManager(run: context.run, log: context.log).activate(driver: type, sr: try context.srUUID(), vdi: vdi,
                                                                         writable: writable)
    }

    /// Counts one deactivation; the last stops the datapath.
    public func deactivate(_ context: DriverContext, vdi: String) throws {
        try DatapathManager(run: context.run, log: context.log).deactivate(sr: try context.srUUID(), vdi: vdi)
    }

    /// FileVDI's `generate_config`: the device_config as received (SRmaster included), sr_uuid,
    /// vdi_uuid and the command, no args (requests/ext-vdi_attach_from_config.xml).
    public func generateConfig(_ context: DriverContext, vdi: String) throws -> String {
        try attachFromConfigDocument(context, vdi: vdi)
    }

    /// The `vdi_attach_from_config` document of VDI `vdi`: device_config as received, sr_uuid,
    /// vdi_uuid, the members `extra` (NFSSR adds the SR's sm_config and other_config), the
    /// command, in the byte layout of the Python SM.
    public func attachFromConfigDocument(_ context: DriverContext, vdi: String, extra: [XMLRPCMember] = []) throws -> String {
        let members = [XMLRPCMember("device_config", context.request.deviceConfig.xmlrpcValue),
                       XMLRPCMember("sr_uuid", .string(try context.srUUID())), XMLRPCMember("vdi_uuid", .string(vdi))]
            + extra + [XMLRPCMember("command", .string(SMAPICommand.vdiAttachFromConfig.rawValue))]
        return XMLRPCEncoder(style: .python).encode(XMLRPCMethodCall(methodName: SMAPICommand.vdiAttachFromConfig.rawValue,
                                                                     params: [.struct(members)]))
    }
}
