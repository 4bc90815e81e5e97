/// Why a datapath could not be started, reached or stopped.
public enum DatapathError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A socket path is longer than `sun_path` allows (use a shorter run directory).
    case socketPathTooLong(String)
    /// Binding a socket failed.
    case bind(String)
    /// The `swiftsm-datapath` executable was not found.
    case executableMissing
    /// The process could not be started or died before it was ready.
    case startFailed(String)
    /// The control socket answered with an error or not at all.
    case control(String)
    /// The VDI is active in the other mode (read-only vs read-write).
    case modeConflict(String)
    /// A live migration's mirror could not be started, failed, or the switch to the
    /// destination could not be made.
    case mirror(String)

    /// A one-line explanation.
    public var description: String {
        switch self {
        case let .socketPathTooLong(p): return "socket path \(p) is longer than \(DatapathDirectory.maxSocketPath) bytes; use a shorter SWIFTSM_RUN_DIR"
        case let .bind(why): return "cannot bind the datapath sockets: \(why)"
        case .executableMissing: return "swiftsm-datapath not found (next to this program, in PATH, or SWIFTSM_DATAPATH)"
        case let .startFailed(why): return "datapath did not start: \(why)"
        case let .control(why): return "datapath control: \(why)"
        case let .modeConflict(why): return why
        case let .mirror(why): return "mirror: \(why)"
        }
    }
}
