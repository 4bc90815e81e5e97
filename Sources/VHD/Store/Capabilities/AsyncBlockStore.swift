import Foundation

/// A store that starts reads and writes without a thread waiting for each, and reports their
/// end to a completion (an iSCSI LUN on pipelined sessions, an LV on one): the data path then
/// sends READs and rewrites of blocks it knows straight from its event loop. The buffer must
/// stay valid, and untouched by anyone else, until the completion has run; completions run on
/// the store's own threads and must not block. A request the store cannot start that way is
/// still done (on a thread of its own), so callers need no second path.
public protocol AsyncBlockStore: ConcurrentReadStore {
    /// Whether requests started now go out with no thread waiting (an iSCSI LUN's pipeline has a
    /// session up); when false, callers had better use their own threads and the blocking calls.
    var startsAsynchronously: Bool { get }
    /// Reads `buffer.count` bytes at `offset` into `buffer`; `completion` gets nil or the error.
    func startRead(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64, completion: @escaping @Sendable (Error?) -> Void)
    /// Writes `buffer` at `offset` (durable after `sync`); `completion` gets nil or the error.
    func startWrite(_ buffer: UnsafeRawBufferPointer, at offset: UInt64, completion: @escaping @Sendable (Error?) -> Void)
}

extension AsyncBlockStore {
    /// Starts a write of each run at once; `completion` once every one ended, with the first
    /// error (at once when there are none). The runs' bytes must stay valid until then.
    public func startWrites(_ runs: [(bytes: UnsafeRawBufferPointer, offset: UInt64)], completion: @escaping @Sendable (Error?) -> Void) {
        let countdown = PartCountdown(parts: runs.count, completion: completion)
        for run in runs { startWrite(run.bytes, at: run.offset, completion: countdown.end) }
    }
}

/// Waits for several asynchronous parts of one request: `completion` runs once, when the last
/// part has ended, with the first error any part reported.
public final class PartCountdown: @unchecked Sendable {
    private let lock = NSLock()
    private var left: Int
    private var error: Error?
    private let completion: @Sendable (Error?) -> Void

    /// A countdown of `parts` parts (none: `completion` runs at once).
    public init(parts: Int, completion: @escaping @Sendable (Error?) -> Void) {
        left = parts
        self.completion = completion
        if parts == 0 { completion(nil) }
    }

    /// Ends one part, with its error if it failed.
    public func end(_ failure: Error?) {
        let last: Bool = lock.withLock {
            if let failure, error == nil { error = failure }
            left -= 1
            return left == 0
        }
        if last { completion(lock.withLock { error }) }
    }
}

/// A raw buffer handed from thread to thread while an asynchronous request runs; whoever hands
/// it over promises that nobody else touches it meanwhile.
public struct TransferredBuffer: @unchecked Sendable {
    /// The bytes.
    public let bytes: UnsafeMutableRawBufferPointer

    /// The buffer `bytes`.
    public init(_ bytes: UnsafeMutableRawBufferPointer) { self.bytes = bytes }

    /// The read-only buffer `bytes`.
    public init(_ bytes: UnsafeRawBufferPointer) { self.bytes = UnsafeMutableRawBufferPointer(mutating: bytes) }
}

/// Runs a blocking read or write on a thread of its own and reports to `completion`: how an
/// `AsyncBlockStore` does what it cannot start asynchronously.
public func runDetached(_ body: @escaping @Sendable () throws -> Void, completion: @escaping @Sendable (Error?) -> Void) {
    Thread.detachNewThread {
        do { try body(); completion(nil) } catch { completion(error) }
    }
}
