/// An SR type: what `smdriver` runs when installed as `<Type>SR`. A driver owns the SR's
/// life cycle (probe, create, attach, detach, delete) and hands out the `VolumeContainer` of an
/// attached SR; VDI work is done once for every driver by `VHDRepository`.
public protocol SRDriver: AnyObject {
    /// The answer to `sr_get_driver_info`.
    var info: SMAPIDriverInfo { get }
    /// `storage-type` in `vdi_attach_from_config` results (`ext`, `nfs`, `lvm`).
    var storageType: String { get }
    /// device_config keys an SR command needs, each with the fault raised when it is missing.
    var requiredKeys: [(key: String, missing: SMErrorCode)] { get }
    /// `sr_probe`: the XML document listing what could be attached.
    func probe(_ context: DriverContext) throws -> String
    /// `sr_create`: makes a new, empty SR.
    func create(_ context: DriverContext, size: UInt64) throws
    /// `sr_delete`: removes an empty SR.
    func delete(_ context: DriverContext) throws
    /// `sr_attach`: makes the SR's container reachable on this host.
    func attach(_ context: DriverContext) throws
    /// `sr_detach`: the opposite of attach.
    func detach(_ context: DriverContext) throws
    /// The container of the attached SR.
    func container(_ context: DriverContext) throws -> any VolumeContainer
}
