import Foundation

/// The data path commands: `vdi_attach` describes where the disk will be served, `vdi_activate`
/// starts (or counts) its datapath process and tags the record as blktap does (`ActivationTags`),
/// `vdi_deactivate` stops it, `vdi_detach` has nothing
/// left to do (`ATOMIC_PAUSE` semantics, as the Python SM); `vdi_attach_from_config` attaches and
/// activates in one call without a session. Operations that change an active VDI's chain run
/// with its datapath paused.
extension SMAPIService {
    /// The host's datapaths.
    func datapaths(_ c: DriverContext) -> DatapathManager { DatapathManager(run: run, log: c.log) }

    /// `args[0]` of attach/activate: whether the VDI is wanted read-write.
    func wantsWrite(_ c: DriverContext) -> Bool { c.request.args.first == "true" }

    /// `vdi_attach`: the ATTACH struct; nothing starts until `vdi_activate`.
    func attachVDI(_ c: DriverContext) throws -> XMLRPCMethodResponse {
        let sr = try c.srUUID()
        let uuid = try vdiUUID(c)
        let s = try repository(c).state(uuid)
        let dir = run.datapath(sr: sr, vdi: uuid)
        guard dir.socketPathsFit else { throw SMAPIError(.VDIUnavailable, opterr: DatapathError.socketPathTooLong(dir.nbdSocket).description) }
        return SMAPIResponse.attach(AttachDescription.attach(directory: dir, vdi: uuid,
                                                             readOnlyWithoutParent: !wantsWrite(c) && s.parent == nil))
    }

    /// `vdi_activate`: starts the VDI's datapath on its leaf (read-write when `args[0]` is true).
    func activateVDI(_ c: DriverContext) throws {
        _ = try c.srUUID()
        let uuid = try vdiUUID(c)
        let repo = try repository(c)
        let s = try repo.state(uuid)
        let writable = wantsWrite(c)
        if writable && s.hidden { throw SMAPIError(.VDIUnavailable, opterr: "VDI \(uuid) is a hidden base copy") }
        if writable { try dropInconsistentCBTLog(c, repo, uuid) }
        try ActivationTags(c).activating(uuid, writable: writable) {
            do { try driver.activate(c, vdi: uuid, writable: writable) } catch let e as DatapathError {
                throw SMAPIError(.VDIUnavailable, opterr: e.description)
            }
        }
    }

    /// `vdi_deactivate`: one activation less; the last stops the datapath.
    func deactivateVDI(_ c: DriverContext) throws {
        let sr = try c.srUUID(), uuid = try vdiUUID(c)
        do { try driver.deactivate(c, vdi: uuid) } catch let e as DatapathError {
            throw SMAPIError(.VDIUnavailable, opterr: e.description)
        }
        if !datapaths(c).isActive(sr: sr, vdi: uuid) { try ActivationTags(c).deactivated(uuid) }
    }

    /// `vdi_attach_from_config` (static VDIs, no session): attaches the SR if needed, activates the
    /// VDI read-write and returns the ATTACH struct with `storage-type`.
    func attachFromConfig(_ c: DriverContext) throws -> XMLRPCMethodResponse {
        do {
            let sr = try c.srUUID()
            let uuid = try vdiUUID(c)
            if (try? driver.container(c)) == nil { try driver.attach(c) }
            // The data path rebuilds the container from the plug record, as after sr_attach.
            if SRPlugRecord.read(run: run, sr: sr) == nil { recordPlug(c) }
            try activateVDI(c)
            return SMAPIResponse.attach(AttachDescription.attachFromConfig(directory: run.datapath(sr: sr, vdi: uuid), vdi: uuid,
                                                                           storageType: driver.storageType))
        } catch {
            throw SMAPIError(.SRUnavailable, opterr: "Unable to attach from config: \(error)")
        }
    }

    /// Runs `body` with VDI `uuid` marked `paused` on its record (whether or not it is active
    /// here, so no host activates it meanwhile) and its datapath, if active on this host, paused
    /// (after a flush), then unpauses it onto the VDI's leaf as it is afterwards.
    func withDatapathPaused<T>(_ c: DriverContext, _ uuid: String, _ body: () throws -> T) throws -> T {
        // Written data is forced to disk before the pause, so the pause's own flush is short.
        let sr = try c.srUUID()
        do {
            return try ActivationTags(c).paused(uuid) {
                guard datapaths(c).isActive(sr: sr, vdi: uuid) else { return try body() }
                return try datapaths(c).withPaused(sr: sr, vdi: uuid, flushFirst: true, body)
            }
        } catch let e as DatapathError {
            throw SMAPIError(c.request.command.failureCode, opterr: "pausing the datapath: \(e.description)")
        }
    }
}
