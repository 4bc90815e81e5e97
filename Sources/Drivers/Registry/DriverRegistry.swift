import EXTDriver
import LVMoISCSIDriver
import NFSDriver
import Logging
import SMCore

/// The drivers this build carries, for every executable that must find a driver again from its
/// name: `smdriver` (installed as `<TYPE>SR`, or `--driver <type>`) and `swiftsm-datapath`
/// (`--driver <type>`, to rebuild an SR's container from its plug record).
public enum DriverRegistry {
    /// Every driver type known, lower case.
    public static let types = ["ext", "nfs", "lvmoiscsi"]

    /// Executable names known, as the Python SM names its drivers (`EXTSR`, `NFSSR`, `LVMoISCSISR`).
    public static let names = ["EXTSR", "NFSSR", "LVMoISCSISR"]

    /// A driver for a type (`ext`) or an executable name (`EXTSR`, `NFSSR`, `LVMoISCSISR`), nil if unknown.
    public static func driver(named name: String) -> (any SRDriver)? {
        var type = name.lowercased()
        if type.hasSuffix("sr") && type.count > 2 && !types.contains(type) { type.removeLast(2) }
        switch type {
        case "ext": return EXTDriver()
        case "nfs": return NFSDriver()
        case "lvmoiscsi": return LVMoISCSIDriver()
        default: return nil
        }
    }

    /// Host plugins this build carries (`smdriver` installed as `/etc/xapi.d/plugins/<name>`).
    public static let pluginNames = [TapdiskPausePlugin.name, LVHDThinPlugin.name, DatapathMirrorPlugin.name]

    /// The host plugin called `name` on this host, nil if unknown.
    public static func plugin(named name: String, run: RunDirectory, log: Logger) -> (any HostPlugin)? {
        switch name {
        case TapdiskPausePlugin.name: return TapdiskPausePlugin(run: run, log: log)
        case LVHDThinPlugin.name: return LVHDThinPlugin(run: run, log: log)
        case DatapathMirrorPlugin.name: return DatapathMirrorPlugin(run: run, log: log)
        default: return nil
        }
    }
}
