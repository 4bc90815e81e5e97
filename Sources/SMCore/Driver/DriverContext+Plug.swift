import Logging

/// A driver context rebuilt from an SR's plug record, for processes that reach an attached SR
/// outside any SMAPI call (the collector, the data path): the recorded device_config and the SR.
extension DriverContext {
    /// A context for SR-scoped driver calls on the SR `plug` records, without XenAPI callbacks.
    public init(plug: SRPlugRecord, run: RunDirectory, log: Logger) {
        let request = SMAPIRequest(command: .srScan,
                                   deviceConfig: SMAPIStringMap(plug.deviceConfig.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }),
                                   srUUID: plug.sr)
        self.init(request: request, run: run, callbacks: NoCallbacks(), log: log)
    }

    /// The container of SR `sr` attached on this host, rebuilt by `driver` from its plug record.
    public static func container(of sr: String, driver: any SRDriver, run: RunDirectory, log: Logger) throws -> any VolumeContainer {
        guard let plug = SRPlugRecord.read(run: run, sr: sr) else { throw StorageError.notAttached(sr) }
        return try driver.container(DriverContext(plug: plug, run: run, log: log))
    }
}
