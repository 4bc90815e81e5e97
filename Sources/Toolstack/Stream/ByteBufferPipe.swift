import Foundation
import NIOCore
import VHD

/// Bytes on their way from an event loop to a thread that consumes them (an upload's body, a
/// TLS client's answer): the event loop appends what arrives and pauses reading from the socket
/// while more than `highWater` bytes wait; the consumer reads, blocking until bytes come, and
/// resumes the socket once fewer than `lowWater` wait.
final class ByteBufferPipe: VHDStreamSource, @unchecked Sendable {
    private let condition = NSCondition()
    private var chunks: [ByteBuffer] = []
    private var head = 0
    private var buffered = 0
    private var ended = false
    private var failure: String?
    private var paused = false
    private let highWater: Int
    private let lowWater: Int
    /// Called on the consumer's thread when a paused socket may be read again.
    private let resume: @Sendable () -> Void

    /// A pipe that calls `resume` when reading the socket may go on.
    init(highWater: Int = 16 << 20, lowWater: Int = 4 << 20, resume: @escaping @Sendable () -> Void) {
        self.highWater = highWater
        self.lowWater = lowWater
        self.resume = resume
    }

    /// Event loop: appends `buffer`; true when the socket should not be read for now.
    func append(_ buffer: ByteBuffer) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        guard !ended, failure == nil else { return false }
        chunks.append(buffer)
        buffered += buffer.readableBytes
        condition.broadcast()
        if buffered > highWater { paused = true }
        return paused
    }

    /// Event loop: no more bytes will come.
    func end() {
        condition.lock()
        ended = true
        condition.broadcast()
        condition.unlock()
    }

    /// The bytes will not all come (the connection closed first).
    func fail(_ why: String) {
        condition.lock()
        if !ended { failure = why }
        condition.broadcast()
        condition.unlock()
    }

    /// Consumer: up to `buffer.count` bytes; 0 at the end. Throws when the connection closed
    /// before the end.
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        condition.lock()
        while head == chunks.count && !ended && failure == nil { condition.wait() }
        if head == chunks.count {
            defer { condition.unlock() }
            if let failure { throw TransferError.connection(failure) }
            return 0
        }
        var got = 0
        while got < buffer.count && head < chunks.count {
            let n = min(buffer.count - got, chunks[head].readableBytes)
            chunks[head].withUnsafeReadableBytes { src in
                UnsafeMutableRawBufferPointer(rebasing: buffer[got..<got + n]).copyMemory(from: UnsafeRawBufferPointer(rebasing: src[0..<n]))
            }
            chunks[head].moveReaderIndex(forwardBy: n)
            got += n
            if chunks[head].readableBytes == 0 { head += 1 }
        }
        if head == chunks.count {
            chunks.removeAll(keepingCapacity: true)
            head = 0
        }
        buffered -= got
        let wake = paused && buffered < lowWater
        if wake { paused = false }
        condition.unlock()
        if wake { resume() }
        return got
    }
}

extension ByteBufferPipe {
    /// Reads and drops everything until the end (or the connection's failure).
    func discardAll() {
        let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 8)
        defer { scratch.deallocate() }
        while let n = try? read(into: scratch), n > 0 {}
    }
}
