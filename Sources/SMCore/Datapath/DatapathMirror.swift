import Foundation
import LibNBD
import NIOCore
import VHD

/// A live migration's mirror: every change a datapath makes to its chain while the mirror runs
/// (writes, zeros, trims) is made on another datapath's export too (the destination's leaf),
/// over one NBD connection, in the order the chain thread made them; the client's reply waits
/// for both. A mirror that fails stops mirroring and says so (the migration fails, the client
/// goes on undisturbed), as xapi's mirrors do.
public final class DatapathMirror: @unchecked Sendable {
    /// One change to make on the destination.
    public enum Change: Sendable {
        /// WRITE of the payload at an offset.
        case write(ByteBuffer, offset: UInt64)
        /// WRITE_ZEROES of a range (sent with NO_HOLE: the zeros hide the destination's parent).
        case zeroes(offset: UInt64, length: UInt64)
        /// TRIM of a range.
        case trim(offset: UInt64, length: UInt64)
    }

    /// What the mirror did so far.
    public struct Status: Sendable, Equatable {
        /// The export mirrored to.
        public var target: String
        /// Bytes of changes made on the destination.
        public var bytes: UInt64
        /// Changes waiting to be sent.
        public var pending: Int
        /// Why it stopped mirroring, if it failed.
        public var failure: String?
    }

    private let client: NBDClient
    private let queue = DispatchQueue(label: "swiftsm.datapath.mirror")
    private let lock = NSLock()
    private let target: String
    // Guarded by `lock`.
    private var failure: String?
    private var bytes: UInt64 = 0
    private var pending = 0
    private var stopped = false

    /// A mirror to export `exportName` of the NBD server on unix socket `socketPath`; fails when
    /// it cannot connect or the export's size differs from `size`.
    public init(socketPath: String, exportName: String, size: UInt64) throws {
        client = try NBDClient(socketPath: socketPath, exportName: exportName)
        target = exportName
        guard client.size == Int64(size) else {
            throw DatapathError.mirror("the destination \(exportName) holds \(client.size) bytes, the source \(size)")
        }
    }

    /// Makes `change` on the destination (after the ones sent before), then calls `done`; once
    /// the mirror has failed or stopped, only calls `done`.
    public func send(_ change: Change, then done: @escaping @Sendable () -> Void) {
        // Queued under the lock: once `stop` has set `stopped`, nothing more reaches the queue.
        lock.lock()
        guard failure == nil, !stopped else {
            lock.unlock()
            return done()
        }
        pending += 1
        defer { lock.unlock() }
        queue.async { [self] in
            let skip = lock.withLock { failure != nil }
            var made: UInt64 = 0
            var failed: String?
            if !skip {
                do {
                    switch change {
                    case let .write(payload, offset):
                        try payload.withUnsafeReadableBytes { try client.write($0, at: Int64(offset)) }
                        made = UInt64(payload.readableBytes)
                    case let .zeroes(offset, length):
                        try client.writeZeros(length: Int64(length), at: Int64(offset), allocate: true)
                        made = length
                    case let .trim(offset, length):
                        try client.trim(length: Int64(length), at: Int64(offset))
                    }
                } catch {
                    failed = "\(error)"
                }
            }
            lock.withLock {
                pending -= 1
                bytes += made
                if let e = failed, failure == nil { failure = e }
            }
            done()
        }
    }

    /// Stops mirroring once every change sent before has been made, and forces them to the
    /// destination's disk; fails when any change could not be made (then nothing guarantees the
    /// destination holds what the source does).
    public func stop() throws {
        lock.withLock { stopped = true }
        queue.sync {}
        if let f = lock.withLock({ failure }) { throw DatapathError.mirror(f) }
        do { try client.flush() } catch { throw DatapathError.mirror("\(error)") }
    }

    /// What the mirror did so far.
    public var status: Status {
        lock.withLock { Status(target: target, bytes: bytes, pending: pending, failure: failure) }
    }
}

/// The datapath's current mirror, if one runs: set by the control socket, read by each request.
public final class MirrorSlot: @unchecked Sendable {
    private let lock = NSLock()
    private var mirror: DatapathMirror?

    /// An empty slot.
    public init() {}

    /// The running mirror.
    public var current: DatapathMirror? {
        get { lock.withLock { mirror } }
        set { lock.withLock { mirror = newValue } }
    }
}

/// One request's change and its mirroring: the chain thread sends the change to the running
/// mirror right after making it (so that a pause, which runs after it on the same thread, finds
/// it sent), and the reply waits for both.
final class MirrorJoin: @unchecked Sendable {
    private let slot: MirrorSlot
    private let change: DatapathMirror.Change
    private let lock = NSLock()
    // Guarded by `lock`.
    private var awaited = false
    private var mirrored = false
    private var parked: (NBDCommandResult, @Sendable (NBDCommandResult) -> Void)?

    /// A join for `change`, mirrored when `slot` holds a mirror at the time it is made.
    init(_ slot: MirrorSlot, _ change: DatapathMirror.Change) {
        self.slot = slot
        self.change = change
    }

    /// `body`, followed (when it made the change and a mirror runs) by the change's mirroring.
    func wrap(_ body: @escaping @Sendable (VHDChain) throws -> NBDCommandResult) -> @Sendable (VHDChain) throws -> NBDCommandResult {
        { [self] chain in
            let result = try body(chain)
            if case .done = result, let mirror = slot.current {
                lock.withLock { awaited = true }
                mirror.send(change) { [self] in mirrorDone() }
            }
            return result
        }
    }

    /// `completion`, called once the change is made here and, when mirrored, there.
    func completing(_ completion: @escaping @Sendable (NBDCommandResult) -> Void) -> @Sendable (NBDCommandResult) -> Void {
        { [self] result in
            let now: Bool = lock.withLock {
                guard awaited && !mirrored else { return true }
                parked = (result, completion)
                return false
            }
            if now { completion(result) }
        }
    }

    private func mirrorDone() {
        let ready: (NBDCommandResult, @Sendable (NBDCommandResult) -> Void)? = lock.withLock {
            mirrored = true
            defer { parked = nil }
            return parked
        }
        if let (result, completion) = ready { completion(result) }
    }
}
