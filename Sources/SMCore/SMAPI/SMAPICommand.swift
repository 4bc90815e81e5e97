/// Every command an SMAPIv1 driver accepts (the dispatcher of `xapi-project/sm: SRCommand.py`);
/// the raw value is the `methodName` of the request.
public enum SMAPICommand: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// Describe the driver: name, capabilities, configuration keys (static, no session).
    case srGetDriverInfo = "sr_get_driver_info"
    /// List the SRs found with a (possibly partial) device_config.
    case srProbe = "sr_probe"
    /// Create a new SR on the storage.
    case srCreate = "sr_create"
    /// Destroy an SR on the storage.
    case srDelete = "sr_delete"
    /// Make the SR usable on this host.
    case srAttach = "sr_attach"
    /// Stop using the SR on this host.
    case srDetach = "sr_detach"
    /// Synchronise xapi's VDI records with the SR's contents.
    case srScan = "sr_scan"
    /// Refresh the SR's sizes in xapi.
    case srUpdate = "sr_update"
    /// Report the SR's content type (legacy; not sent by current xapi).
    case srContentType = "sr_content_type"
    /// Create a VDI and introduce its record.
    case vdiCreate = "vdi_create"
    /// Delete a VDI.
    case vdiDelete = "vdi_delete"
    /// Refresh a VDI's metadata after xapi changed it.
    case vdiUpdate = "vdi_update"
    /// Introduce a record for an existing volume.
    case vdiIntroduce = "vdi_introduce"
    /// Prepare a VDI for use on this host and say where its data will be served.
    case vdiAttach = "vdi_attach"
    /// Undo `vdi_attach`.
    case vdiDetach = "vdi_detach"
    /// Start serving a VDI's data on this host.
    case vdiActivate = "vdi_activate"
    /// Stop serving a VDI's data on this host.
    case vdiDeactivate = "vdi_deactivate"
    /// Snapshot a VDI.
    case vdiSnapshot = "vdi_snapshot"
    /// Clone a VDI.
    case vdiClone = "vdi_clone"
    /// Grow a VDI.
    case vdiResize = "vdi_resize"
    /// Grow an active VDI (not sent by current xapi).
    case vdiResizeOnline = "vdi_resize_online"
    /// Produce the `vdi_attach_from_config` call that attaches a VDI without xapi.
    case vdiGenerateConfig = "vdi_generate_config"
    /// Attach (and, for file SRs, activate) a VDI from a generated config, without xapi.
    case vdiAttachFromConfig = "vdi_attach_from_config"
    /// Undo `vdi_attach_from_config`.
    case vdiDetachFromConfig = "vdi_detach_from_config"
    /// Called before a VM starts using a VDI; resets it when `vdi_on_boot` is `reset`.
    case vdiEpochBegin = "vdi_epoch_begin"
    /// Called after a VM stops using a VDI.
    case vdiEpochEnd = "vdi_epoch_end"
    /// Make `args[0]` the parent of the VDI (storage migration).
    case vdiCompose = "vdi_compose"
    /// Enable changed block tracking on a VDI.
    case vdiEnableCBT = "vdi_enable_cbt"
    /// Disable changed block tracking on a VDI.
    case vdiDisableCBT = "vdi_disable_cbt"
    /// Delete a snapshot's data, keeping its CBT metadata.
    case vdiDataDestroy = "vdi_data_destroy"
    /// Return the blocks changed between two VDIs (base64 bitmap).
    case vdiListChangedBlocks = "vdi_list_changed_blocks"

    /// The command name as on the wire, e.g. `vdi_create`.
    public var description: String { rawValue }

    /// True for the `sr_*` commands.
    public var isSRCommand: Bool { rawValue.hasPrefix("sr_") }

    /// True for the commands before which the Python SM loads the VDI object (`NEEDS_VDI_OBJECT`).
    public var needsVDI: Bool {
        switch self {
        case .vdiIntroduce: return false
        default: return !isSRCommand
        }
    }

    /// The error the Python SM reports when a command or internal failure escapes this command
    /// (`EXCEPTION_TYPE`: 40, 78, 80, 46, 110, 82, 81, otherwise 202 `SMGeneral`).
    public var failureCode: SMErrorCode {
        switch self {
        case .srScan: return .SRScan
        case .vdiCreate: return .VDICreate
        case .vdiDelete: return .VDIDelete
        case .vdiAttach, .vdiDetach, .vdiActivate, .vdiDeactivate: return .VDIUnavailable
        case .vdiResize, .vdiResizeOnline: return .VDIResize
        case .vdiSnapshot: return .VDISnapshot
        case .vdiClone: return .VDIClone
        case .vdiEnableCBT: return .CBTActivateFailed
        case .vdiDisableCBT: return .CBTDeactivateFailed
        case .vdiListChangedBlocks: return .CBTChangedBlocksError
        case .vdiDataDestroy: return .VDIDelete
        default: return .SMGeneral
        }
    }
}
