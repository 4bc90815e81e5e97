import Logging

/// A driver context rebuilt from an SR's plug record, for processes that reach an attached SR
/// outside any SMAPI call (the collector, the data path): the recorded device_config and the SR.
extension DriverContext {
    /// A context for SR-scoped driver calls on the SR `plug` records (its device_config,
    /// sm_config and other_config), without XenAPI callbacks.
    public init(plug: SRPlugRecord, run: RunDirectory, log: Logger) {
        var request = SMAPIRequest(command: .srScan,
                                   deviceConfig: SMAPIStringMap(plug.deviceConfig.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }),
                                   srUUID: plug.sr)
        request.srSMConfig = plug.smConfig.map { SMAPIStringMap($0.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }) }
        self.init(request: request, run: run, callbacks: NoCallbacks(), log: log)
        recordedOtherConfig = plug.otherConfig ?? [:]
    }

    /// The container of SR `sr` attached on this host, rebuilt by `driver` from its plug record.
    /// `servesDataPath`: the caller is the data path (network drivers hold through outages).
    public static func container(of sr: String, driver: any SRDriver, run: RunDirectory, log: Logger,
                                 servesDataPath: Bool = false) throws -> any VolumeContainer {
        guard let plug = SRPlugRecord.read(run: run, sr: sr) else { throw StorageError.notAttached(sr) }
        var context = DriverContext(plug: plug, run: run, log: log)
        context.servesDataPath = servesDataPath
        return try driver.container(context)
    }
}
