#if canImport(Glibc)
import Glibc
#endif

/// A POSIX thread running one closure, joined by its owner (bulk operations read ahead on one
/// while the calling thread writes). The owner must call `join()` before it lets go of anything
/// the closure uses; `deinit` joins too, so a thread never outlives its handle.
final class ReaderThread {
    private final class Body: Sendable {
        let run: @Sendable () -> Void
        init(_ run: @escaping @Sendable () -> Void) { self.run = run }
    }

    private var handle: pthread_t
    private var joined = false

    /// Starts `body` on a new thread; throws `VHDError.io` (naming `name`) if the system refuses one.
    init(name: String, _ body: @escaping @Sendable () -> Void) throws {
        let context = Unmanaged.passRetained(Body(body)).toOpaque()
        var t = pthread_t()
        let rc = pthread_create(&t, nil, { raw in
            Unmanaged<Body>.fromOpaque(raw!).takeRetainedValue().run()
            return nil
        }, context)
        guard rc == 0 else {
            Unmanaged<Body>.fromOpaque(context).release()
            throw VHDError.io(path: name, operation: "pthread_create", errno: rc)
        }
        handle = t
    }

    /// Waits for the closure to return (once; later calls return at once).
    func join() {
        guard !joined else { return }
        joined = true
        pthread_join(handle, nil)
    }

    deinit { join() }
}
