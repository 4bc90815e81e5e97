/// The VDI records a driver keeps on the SR itself (`VDIRecordKeeper`): kept up to date by the
/// SR master after every command that makes, changes or removes a record. A failure to write
/// them is logged, not raised: the VDI command itself is done, and the master's next sr_attach
/// puts the kept records right from xapi's.
extension SMAPIService {
    /// The driver as a record keeper, on the SR master only.
    private func keeper(_ c: DriverContext) -> (any VDIRecordKeeper)? {
        c.request.isMaster ? driver as? any VDIRecordKeeper : nil
    }

    /// Keeps `records` (new or changed).
    func keep(_ c: DriverContext, _ records: [KeptVDIRecord]) {
        guard !records.isEmpty else { return }
        keep(c) { _ in records }
    }

    /// Keeps the records `make` derives from the kept ones.
    func keep(_ c: DriverContext, _ make: ([String: KeptVDIRecord]) -> [KeptVDIRecord]) {
        guard let keeper = keeper(c) else { return }
        do { try keeper.keep(c, make) } catch { c.log.warning("keeping VDI records on the SR failed: \(error)") }
    }

    /// Drops VDI `uuid`'s kept record.
    func dropKept(_ c: DriverContext, _ uuid: String) {
        guard let keeper = keeper(c) else { return }
        do { try keeper.drop(c, vdi: uuid) } catch { c.log.warning("dropping VDI \(uuid)'s record on the SR failed: \(error)") }
    }

    /// The kept records (none when the driver keeps none or they cannot be read).
    func keptRecords(_ c: DriverContext) -> [String: KeptVDIRecord] {
        guard let keeper = driver as? any VDIRecordKeeper else { return [:] }
        do { return try keeper.keptRecords(c) } catch {
            c.log.warning("reading the VDI records kept on the SR failed: \(error)")
            return [:]
        }
    }

    /// VDI `uuid`'s record as xapi has it now, kept (vdi_update).
    func keepFromXapi(_ c: DriverContext, _ uuid: String) {
        guard keeper(c) != nil else { return }
        do {
            guard let record = try c.callbacks.srVDIRecords()[uuid] else { return }
            keep(c, [record])
        } catch {
            c.log.warning("reading VDI \(uuid)'s record from xapi failed: \(error)")
        }
    }

    /// sr_attach on the master: the kept records made those of the VDIs there are, xapi's
    /// record first (the Python SM's sync of the metadata with the storage and with xapi).
    func reconcileKept(_ c: DriverContext) {
        guard let keeper = keeper(c), c.request.sessionRef?.isEmpty == false else { return }
        do {
            let volumes = Set(try repository(c).scan().keys)
            try keeper.reconcile(c, xapi: try c.callbacks.srVDIRecords(), volumes: volumes)
        } catch {
            c.log.warning("reconciling the VDI records kept on the SR failed: \(error)")
        }
    }
}
