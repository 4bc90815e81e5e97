import Foundation
import NIOCore

/// Requests that finished on other threads (the chain thread, I/O threads, a storage
/// pipeline's thread), handed to their connection's event loop in batches: the first to finish
/// schedules one task that takes every request finished by then, so requests ending together
/// cost one event-loop task and wake-up instead of one each.
final class ReplyMailbox: @unchecked Sendable {
    /// One finished request and what its reply needs.
    struct Finished: Sendable {
        /// The request's cookie.
        let cookie: UInt64
        /// Where it started (for structured read replies).
        let offset: UInt64
        /// Bytes it counted in flight.
        let bytes: UInt64
        /// Whether it was a read.
        let isRead: Bool
        /// What it gave.
        let result: NBDCommandResult
    }

    private let lock = NSLock()
    // Guarded by `lock`.
    private var pending: [Finished] = []
    private let eventLoop: EventLoop
    /// Runs on `eventLoop` only.
    private let deliver: ([Finished]) -> Void

    /// A mailbox whose batches `deliver` takes on `eventLoop` (made on that loop).
    init(eventLoop: EventLoop, deliver: @escaping ([Finished]) -> Void) {
        self.eventLoop = eventLoop
        self.deliver = deliver
    }

    /// Posts a finished request, from any thread.
    func post(_ finished: Finished) {
        let first: Bool = lock.withLock {
            pending.append(finished)
            return pending.count == 1
        }
        if first { eventLoop.execute { self.drain() } }
    }

    private func drain() {
        let batch: [Finished] = lock.withLock {
            defer { pending.removeAll(keepingCapacity: true) }
            return pending
        }
        if !batch.isEmpty { deliver(batch) }
    }
}
