/// An SR type: what `smdriver` runs when installed as `<Type>SR`. A driver owns the SR's
/// life cycle (probe, create, attach, detach, delete) and hands out the `VolumeContainer` of an
/// attached SR; VDI work is done once for every driver by `VHDRepository`.
public protocol SRDriver: AnyObject {
    /// The SR type in lower case (`ext`, `nfs`, `lvmoiscsi`): `smdriver --driver <type>`, the
    /// executable `<TYPE>SR`, and how other processes (the data path, the collector) find this
    /// driver again.
    var type: String { get }
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
    /// `vdi_activate`'s data path step: the leaf made ready for writing when `writable` and the
    /// VDI's datapath started (default: `SRDriver+Datapath`).
    func activate(_ context: DriverContext, vdi: String, writable: Bool) throws
    /// `vdi_deactivate`'s data path step: one activation less (default: the last stops the datapath).
    func deactivate(_ context: DriverContext, vdi: String) throws
    /// `vdi_generate_config`: the `vdi_attach_from_config` call static VDIs run later.
    func generateConfig(_ context: DriverContext, vdi: String) throws -> String
    /// Refuses the call on this host when the SR lets only another host make it (LVHD: the
    /// SR master changes the VG, fault 58). Default: every host may make every call.
    func authorize(_ context: DriverContext) throws
}

extension SRDriver {
    /// Every host may make every call.
    public func authorize(_ context: DriverContext) throws {}
}
