import EXTDriver
import SMCore

/// The drivers this build carries, by executable name (`EXTSR`).
enum DriverRegistry {
    /// Executable names known.
    static let names = ["EXTSR"]

    /// A driver for an executable name, nil if unknown.
    static func driver(named name: String) -> (any SRDriver)? {
        switch name {
        case "EXTSR": return EXTDriver()
        default: return nil
        }
    }
}
