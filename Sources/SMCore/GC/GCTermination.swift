import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// SIGTERM and SIGINT for a collector process: remembered, and honoured at the next safe point
/// like an abort (the Python SM's collector does the same with SIGTERM).
public enum GCTermination {
    static let flag = Atomic<Bool>(false)

    /// Whether the process was told to terminate.
    public static var requested: Bool { flag.load(ordering: .relaxed) }

    /// Installs the handlers.
    public static func install() {
        signal(SIGTERM) { _ in GCTermination.flag.store(true, ordering: .relaxed) }
        signal(SIGINT) { _ in GCTermination.flag.store(true, ordering: .relaxed) }
    }
}
