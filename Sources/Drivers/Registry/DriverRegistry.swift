import EXTDriver
import NFSDriver
import SMCore

/// The drivers this build carries, for every executable that must find a driver again from its
/// name: `smdriver` (installed as `<TYPE>SR`, or `--driver <type>`) and `swiftsm-datapath`
/// (`--driver <type>`, to rebuild an SR's container from its plug record).
public enum DriverRegistry {
    /// Every driver type known, lower case.
    public static let types = ["ext", "nfs"]

    /// Executable names known (`EXTSR`, `NFSSR`).
    public static var names: [String] { types.map { $0.uppercased() + "SR" } }

    /// A driver for a type (`ext`) or an executable name (`EXTSR`, `NFSSR`), nil if unknown.
    public static func driver(named name: String) -> (any SRDriver)? {
        var type = name.lowercased()
        if type.hasSuffix("sr") && type.count > 2 && !types.contains(type) { type.removeLast(2) }
        switch type {
        case "ext": return EXTDriver()
        case "nfs": return NFSDriver()
        default: return nil
        }
    }
}
