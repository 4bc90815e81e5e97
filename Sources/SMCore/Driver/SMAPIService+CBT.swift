import CBT
import Foundation

/// The changed-block-tracking commands, for every driver through the repository's container
/// (the Python SM's `VDI.configure_blocktracking`, `list_changed_blocks`, `data_destroy` and the
/// CBT parts of delete, activate and scan). Logs of active VDIs change only with their datapath
/// paused: the datapath keeps the bitmap in memory and writes it back when it pauses or closes.
extension SMAPIService {
    /// `vdi_enable_cbt`: a new log for a VDI that has none (snapshots and base copies refused, 66).
    /// A log a crash left inconsistent is dropped with an alert and a new chain starts.
    func enableCBT(_ c: DriverContext) throws -> XMLRPCMethodResponse {
        let repo = try repository(c)
        let uuid = try vdiUUID(c)
        let s = try repo.state(uuid)
        guard !s.hidden else { throw CBTError.notAllowed("VDI \(uuid) is a base copy: tracking not permitted") }
        if try c.callbacks.isASnapshot(uuid: uuid) == true { throw CBTError.notAllowed("Raw VDI or snapshot not permitted") }
        try dropInconsistentCBTLog(c, repo, uuid)
        guard !repo.cbtLogs.exists(uuid) else { return SMAPIResponse.unit() }
        do {
            _ = try withDatapathPaused(c, uuid) { try repo.cbtLogs.enable(uuid, size: s.virtualSize) }
        } catch let e as SMAPIError { throw e } catch {
            throw CBTError.enableFailed("\(error)")
        }
        try c.callbacks.setCBTEnabled(uuid: uuid, true)
        return SMAPIResponse.unit()
    }

    /// `vdi_disable_cbt`: the VDI's log removed (the log before it loses its child).
    func disableCBT(_ c: DriverContext) throws -> XMLRPCMethodResponse {
        let repo = try repository(c)
        let uuid = try vdiUUID(c)
        guard repo.cbtLogs.exists(uuid) else { return SMAPIResponse.unit() }
        do {
            try withDatapathPaused(c, uuid) { try repo.cbtLogs.disable(uuid) }
        } catch let e as SMAPIError { throw e } catch {
            throw CBTError.disableFailed("\(error)")
        }
        try c.callbacks.setCBTEnabled(uuid: uuid, false)
        return SMAPIResponse.unit()
    }

    /// `vdi_list_changed_blocks`: the base64 bitmap of the blocks changed between the request's
    /// VDI and `args[0]` (a VDI ref; a uuid is taken too when there is no session). An active
    /// target is paused for the read, so its datapath's bitmap is on disk.
    func listChangedBlocks(_ c: DriverContext) throws -> XMLRPCMethodResponse {
        let repo = try repository(c)
        let from = try vdiUUID(c)
        guard let target = c.request.args.first else { throw SMAPIError(.CBTChangedBlocksError, opterr: "no target VDI") }
        let to = try c.callbacks.vdiUUID(ref: target) ?? (VDIName.isUUID(target) ? target : nil)
        guard let to else { throw SMAPIError(.CBTChangedBlocksError, opterr: "unknown VDI \(target)") }
        let (bitmap, _) = try withDatapathPaused(c, to) { try repo.cbtLogs.changedBlocks(from: from, to: to) }
        return SMAPIResponse.string(Data(bitmap.xapiBytes).base64EncodedString())
    }

    /// `vdi_data_destroy`: a snapshot's VHD removed, its CBT log (and xapi's record, which becomes
    /// a `cbt_metadata` VDI) kept; the base it leaves behind is the collector's.
    func dataDestroy(_ c: DriverContext) throws -> XMLRPCMethodResponse {
        let repo = try repository(c)
        let uuid = try vdiUUID(c)
        if try c.callbacks.isASnapshot(uuid: uuid) == false { throw CBTError.notAllowed("Only allowed for snapshot VDIs") }
        if datapaths(c).isActive(sr: try c.srUUID(), vdi: uuid) { throw SMAPIError(.VDIInUse, opterr: "VDI \(uuid) is active") }
        guard repo.container.exists(repo.volume(uuid)) else { return SMAPIResponse.unit() }
        let s = try repo.state(uuid)
        try repo.delete(uuid: uuid)
        let (total, used) = try repo.container.capacity()
        try c.callbacks.srStats(virtualAllocationDelta: -Int64(s.virtualSize), physicalSize: total, physicalUtilisation: used)
        kickCollector(c)
        return SMAPIResponse.unit()
    }

    /// Removes VDI `uuid`'s log before the VDI goes (`CBTLogs.remove`), its child's datapath
    /// paused meanwhile when it is active here.
    func removeCBTLog(_ c: DriverContext, _ repo: VHDRepository, _ uuid: String) throws {
        guard repo.cbtLogs.exists(uuid) else { return }
        if let child = try repo.cbtLogs.header(uuid).child, repo.cbtLogs.exists(child),
           datapaths(c).isActive(sr: try c.srUUID(), vdi: child) {
            try withDatapathPaused(c, child) { try repo.cbtLogs.remove(uuid) }
        } else {
            try repo.cbtLogs.remove(uuid)
        }
    }

    /// Before a VDI's datapath starts writing, and at enable: a log left inconsistent by a crash
    /// (no datapath has it open) cannot be trusted, so tracking is turned off with an alert, as
    /// the Python SM does at activation (a full backup is then needed; enabling again starts a
    /// new chain).
    func dropInconsistentCBTLog(_ c: DriverContext, _ repo: VHDRepository, _ uuid: String) throws {
        guard repo.cbtLogs.exists(uuid), !datapaths(c).isActive(sr: try c.srUUID(), vdi: uuid),
              try !repo.cbtLogs.header(uuid).consistent else { return }
        c.log.warning("the CBT log of \(uuid) is inconsistent: tracking disabled")
        try repo.cbtLogs.disable(uuid)
        try c.callbacks.setCBTEnabled(uuid: uuid, false)
        try c.callbacks.alert(name: "VDI_CBT_METADATA_INCONSISTENT", vdi: uuid,
                              body: "Changed Block Tracking metadata is inconsistent for disk \(uuid).")
    }

    /// The `cbt_metadata` VDIs of the SR: logs without a VHD (snapshots whose data was destroyed).
    func cbtMetadataStates(_ repo: VHDRepository, excluding vhds: Set<String>, _ c: DriverContext) -> [VDIState] {
        var out: [VDIState] = []
        for uuid in ((try? repo.cbtLogs.vdis()) ?? []).subtracting(vhds).sorted() {
            do {
                let h = try repo.cbtLogs.header(uuid)
                var s = VDIState(uuid: uuid, location: uuid, virtualSize: h.size,
                                 physicalUtilisation: try repo.container.utilisation(of: repo.cbtLogs.name(uuid)),
                                 parent: nil, hidden: false, readOnly: false)
                s.cbtMetadata = true
                out.append(s)
            } catch {
                c.log.warning("CBT log of \(uuid) unreadable: \(error)")
            }
        }
        return out
    }
}
