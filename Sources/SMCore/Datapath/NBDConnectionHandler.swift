import Foundation
import NIOCore
import VHD

/// One NBD connection: the fixed-newstyle handshake, then transmission. Requests are parsed on
/// the event loop and run on the shared `ChainWorker`; replies are written when the chain thread
/// is done, each whole. Anything malformed gets an error reply or closes this connection only.
final class NBDConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = IOData

    /// Where the connection is in the protocol.
    enum Phase { case clientFlags, options, transmission, disconnecting, closed }

    /// Bytes expected before the next header is parsed.
    enum Pending {
        case none
        /// An oversized option's payload being skipped; answered with ERR_TOO_BIG afterwards.
        case skipOption(option: UInt32, remaining: Int)
        /// A refused WRITE's payload being skipped; answered with `error` afterwards.
        case skipWrite(cookie: UInt64, error: UInt32, remaining: Int)
        /// A WRITE's payload being collected into its own buffer.
        case writePayload(cookie: UInt64, offset: UInt64, fua: Bool, payload: ByteBuffer, remaining: Int)
    }

    /// Smallest READ sent straight from the page cache (sendfile) rather than copied.
    static let regionMinimum = 64 << 10
    /// Most requests in flight per connection before reading pauses.
    static let maxInFlight = 128
    /// Most bytes in flight per connection before reading pauses (bounds the memory a fast
    /// client can make the datapath hold: payloads waiting for the chain, READ buffers).
    static let maxInFlightBytes = 4 << 20

    let export: NBDExport
    let worker: ChainWorker
    var phase = Phase.clientFlags
    var pending = Pending.none
    var cumulation: ByteBuffer?
    var clientNoZeroes = false
    var structured = false
    /// The contexts SET_META_CONTEXT selected (for this export), in id order.
    var metaContexts: [NBDMetaContext] = []
    var size: UInt64 = 0
    var inFlight = 0
    var inFlightBytes = 0
    var readPending = false
    /// Descriptors of queued file regions.
    let regionFiles = RegionFiles()
    /// Where requests that finished elsewhere wait for the event loop (`replyMailbox`).
    var replies: ReplyMailbox?

    /// A handler serving `export` from `worker`.
    init(export: NBDExport, worker: ChainWorker) {
        self.export = export
        self.worker = worker
    }

    /// Whether the socket takes more replies (NIO's write-buffer watermarks).
    var writable = true

    var overloaded: Bool { inFlight >= Self.maxInFlight || inFlightBytes >= Self.maxInFlightBytes || !writable }

    // MARK: - Channel events

    func channelActive(context: ChannelHandlerContext) {
        worker.noteConnection(opened: true)
        context.writeAndFlush(wrapOutboundOut(.byteBuffer(NBDReplyEncoder.greeting(context.channel.allocator))), promise: nil)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if phase != .closed { worker.noteConnection(opened: false) }
        phase = .closed
        cumulation = nil
        pending = .none
        regionFiles.retireAll()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        guard phase != .closed, phase != .disconnecting else { return }
        if cumulation == nil {
            cumulation = incoming
        } else {
            cumulation!.writeBuffer(&incoming)
        }
        process(context: context)
        if let c = cumulation {
            if c.readableBytes == 0 { cumulation = nil } else if c.readerIndex > 1 << 16 { cumulation!.discardReadBytes() }
        }
        context.flush()
    }

    /// Replies piling up unsent count as load: stop taking requests until the client reads them.
    func channelWritabilityChanged(context: ChannelHandlerContext) {
        writable = context.channel.isWritable
        if writable && phase == .transmission {
            if let c = cumulation, c.readableBytes > 0 { process(context: context) }
            if readPending && !overloaded {
                readPending = false
                context.read()
            }
            context.flush()
        }
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        close(context)
    }

    /// Holds reads while too much is in flight (back-pressure on a fast writer).
    func read(context: ChannelHandlerContext) {
        if overloaded { readPending = true } else { context.read() }
    }

    func close(_ context: ChannelHandlerContext) {
        guard phase != .closed else { return }
        if phase != .closed { worker.noteConnection(opened: false) }
        phase = .closed
        cumulation = nil
        context.close(promise: nil)
    }

    /// Stops reading and closes once every reply written so far has left.
    func closeAfterWrites(_ context: ChannelHandlerContext) {
        guard phase != .closed else { return }
        phase = .disconnecting
        cumulation = nil
        context.writeAndFlush(wrapOutboundOut(.byteBuffer(context.channel.allocator.buffer(capacity: 0)))).assumeIsolated().whenComplete { _ in
            self.close(context)
        }
    }

    func send(_ context: ChannelHandlerContext, _ buffer: ByteBuffer) {
        context.write(wrapOutboundOut(.byteBuffer(buffer)), promise: nil)
    }

    // MARK: - Parsing

    /// Consumes as much of the cumulation as forms whole messages.
    func process(context: ChannelHandlerContext) {
        while phase != .closed && phase != .disconnecting, cumulation != nil, cumulation!.readableBytes > 0 || pendingIsComplete {
            switch pending {
            case .none: break
            case let .skipOption(option, remaining):
                let n = min(remaining, cumulation!.readableBytes)
                cumulation!.moveReaderIndex(forwardBy: n)
                if n == remaining {
                    pending = .none
                    var b = context.channel.allocator.buffer(capacity: 64)
                    NBDReplyEncoder.optionError(&b, option: option, type: NBD.Reply.errTooBig, message: "option payload too big")
                    send(context, b)
                } else {
                    pending = .skipOption(option: option, remaining: remaining - n)
                }
                continue
            case let .skipWrite(cookie, error, remaining):
                let n = min(remaining, cumulation!.readableBytes)
                cumulation!.moveReaderIndex(forwardBy: n)
                if n == remaining {
                    pending = .none
                    reject(context, cookie: cookie, error: error, isRead: false)
                } else {
                    pending = .skipWrite(cookie: cookie, error: error, remaining: remaining - n)
                }
                continue
            case .writePayload(let cookie, let offset, let fua, var payload, let remaining):
                let n = min(remaining, cumulation!.readableBytes)
                var slice = cumulation!.readSlice(length: n)!
                payload.writeBuffer(&slice)
                if n == remaining {
                    pending = .none
                    submitWrite(context, cookie: cookie, offset: offset, fua: fua, payload: payload)
                } else {
                    pending = .writePayload(cookie: cookie, offset: offset, fua: fua, payload: payload, remaining: remaining - n)
                }
                continue
            }
            // Leave further requests in the buffer while too much is in flight; completions resume.
            if phase == .transmission && overloaded { break }
            let progressed: Bool
            switch phase {
            case .clientFlags: progressed = parseClientFlags(context)
            case .options: progressed = parseOption(context)
            case .transmission: progressed = parseRequest(context)
            case .disconnecting, .closed: progressed = false
            }
            if !progressed { break }
        }
    }

    private var pendingIsComplete: Bool {
        switch pending {
        case let .skipOption(_, r), let .skipWrite(_, _, r), let .writePayload(_, _, _, _, r): return r == 0
        case .none: return false
        }
    }

    func parseClientFlags(_ context: ChannelHandlerContext) -> Bool {
        guard let flags = cumulation!.readInteger(as: UInt32.self) else { return false }
        guard flags & ~(NBD.ClientFlag.fixedNewstyle | NBD.ClientFlag.noZeroes) == 0 else {
            close(context)
            return false
        }
        clientNoZeroes = flags & NBD.ClientFlag.noZeroes != 0
        phase = .options
        return true
    }

    func parseRequest(_ context: ChannelHandlerContext) -> Bool {
        guard cumulation!.readableBytes >= 28 else { return false }
        let magic = cumulation!.readInteger(as: UInt32.self)!
        let flags = cumulation!.readInteger(as: UInt16.self)!
        let type = cumulation!.readInteger(as: UInt16.self)!
        let cookie = cumulation!.readInteger(as: UInt64.self)!
        let offset = cumulation!.readInteger(as: UInt64.self)!
        let length = cumulation!.readInteger(as: UInt32.self)!
        guard magic == NBD.requestMagic else {
            close(context)
            return false
        }
        handleRequest(context, flags: flags, type: type, cookie: cookie, offset: offset, length: length)
        return true
    }

    // MARK: - Transmission

    /// Whether `[offset, offset+length)` lies inside the export.
    func inside(_ offset: UInt64, _ length: UInt32) -> Bool { offset <= size && UInt64(length) <= size - offset }

    func handleRequest(_ context: ChannelHandlerContext, flags: UInt16, type: UInt16, cookie: UInt64, offset: UInt64, length: UInt32) {
        typealias C = NBD.Command
        typealias CF = NBD.CommandFlag
        let known = CF.fua | CF.noHole | CF.df | CF.reqOne | CF.fastZero
        let fua = flags & CF.fua != 0
        if type == C.write {
            let error: UInt32?
            if flags & ~known != 0 { error = NBD.Errno.einval }
            else if export.readOnly { error = NBD.Errno.eperm }
            else if Int(length) > NBD.maxPayload { error = NBD.Errno.einval }
            else if !inside(offset, length) { error = NBD.Errno.enospc }
            else { error = nil }
            if let e = error {
                pending = .skipWrite(cookie: cookie, error: e, remaining: Int(length))
            } else if cumulation!.readableBytes >= Int(length) {
                // The whole payload came in with its header: a view of the bytes read, not a copy.
                submitWrite(context, cookie: cookie, offset: offset, fua: fua, payload: cumulation!.readSlice(length: Int(length))!)
            } else {
                let payload = context.channel.allocator.buffer(capacity: Int(length))
                pending = .writePayload(cookie: cookie, offset: offset, fua: fua, payload: payload, remaining: Int(length))
            }
            return
        }
        guard flags & ~known == 0 else { return reject(context, cookie: cookie, error: NBD.Errno.einval, isRead: type == C.read) }
        switch type {
        case C.read:
            guard Int(length) <= NBD.maxPayload else { return reject(context, cookie: cookie, error: NBD.Errno.einval, isRead: true) }
            guard inside(offset, length) else { return reject(context, cookie: cookie, error: NBD.Errno.einval, isRead: true) }
            // Blocks the read map knows: planned here, read from the page cache here when it
            // holds them, else on an I/O thread; the chain thread is not involved.
            if let plan = worker.readMap.plan(offset: offset, length: Int(length)) {
                let started = DispatchTime.now().uptimeNanoseconds
                // Large and in one file: sent straight from the page cache (sendfile) when all of
                // it is there, else read on an I/O thread (without first copying what is cached).
                var tryCache = true
                if Int(length) >= Self.regionMinimum, let (fd, at) = plan.singleFile {
                    tryCache = false
                    if ReadPlan.isCached(fd: fd, offset: at, count: Int(length)),
                       let file = regionFiles.entry(for: fd, generation: plan.generation) {
                        worker.readMap.finished(bytes: Int(length), micros: (DispatchTime.now().uptimeNanoseconds - started) / 1000, failed: false)
                        regionFiles.queued(file)
                        replyRegion(context, cookie: cookie, offset: offset, file: file, at: at, count: Int(length))
                        return
                    }
                }
                if tryCache, let data = worker.readCached(plan, started: started) {
                    reply(context, cookie: cookie, offset: offset, result: .data(data, headerRoom: 0), isRead: true)
                } else {
                    submit(context, bytes: UInt64(length), cookie: cookie, offset: offset, isRead: true) { completion in
                        self.worker.readPlanned(plan, started: started, completion: completion)
                    }
                }
                return
            }
            // The data gets a buffer of its own (a power of two for the usual request sizes, which
            // is what ByteBuffer allocates anyway); the header goes in a second, small write.
            let room = 0
            submit(context, bytes: UInt64(length), cookie: cookie, offset: offset, isRead: true) { completion in
                self.worker.submitRead(offset: offset, length: Int(length), headerRoom: room, completion: completion)
            }
        case C.disc:
            phase = .disconnecting
            if inFlight == 0 { closeAfterWrites(context) }
        case C.flush:
            let worker = self.worker
            submit(context, .flush, bytes: 0, cookie: cookie, offset: 0) { chain in
                try chain.flush()
                try worker.persistChanges()
                return .done
            }
        case C.trim:
            guard !export.readOnly else { return reject(context, cookie: cookie, error: NBD.Errno.eperm, isRead: false) }
            guard inside(offset, length) else { return reject(context, cookie: cookie, error: NBD.Errno.einval, isRead: false) }
            // Holes punched in the leaf's blocks on the chain thread (contents after TRIM are
            // unspecified: zeros, or the data where the leaf file cannot punch). No block moves and
            // no bitmap changes, so the read map stays valid and needs no write accounting.
            // A trimmed block changed for CBT too (tapdisk logs discards as writes).
            let count = UInt64(length)
            let worker = self.worker
            submit(context, .trim, bytes: 0, cookie: cookie, offset: offset, mirrored: .trim(offset: offset, length: count)) { chain in
                worker.markChanged(offset: offset, length: count)
                return try ChainIO.trim(chain, offset: offset, length: count, fua: fua)
            }
        case C.cache:
            guard inside(offset, length) else { return reject(context, cookie: cookie, error: NBD.Errno.einval, isRead: false) }
            replyDone(context, cookie: cookie)
        case C.writeZeroes:
            guard !export.readOnly else { return reject(context, cookie: cookie, error: NBD.Errno.eperm, isRead: false) }
            guard inside(offset, length) else { return reject(context, cookie: cookie, error: NBD.Errno.enospc, isRead: false) }
            guard flags & CF.fastZero == 0 else { return reject(context, cookie: cookie, error: NBD.Errno.enotsup, isRead: false) }
            let noHole = flags & CF.noHole != 0
            submitWrite(context, .writeZeroes, cookie: cookie, offset: offset, length: UInt64(length),
                        mirrored: .zeroes(offset: offset, length: UInt64(length))) { chain in
                try ChainIO.writeZeroes(chain, offset: offset, length: UInt64(length), noHole: noHole, fua: fua)
            }
        case C.blockStatus:
            let contexts = metaContexts
            guard !contexts.isEmpty else { return reject(context, cookie: cookie, error: NBD.Errno.einval, isRead: false) }
            guard length > 0, inside(offset, length) else {
                return reject(context, cookie: cookie, error: NBD.Errno.einval, isRead: false)
            }
            let reqOne = flags & CF.reqOne != 0
            submit(context, .blockStatus, bytes: 0, cookie: cookie, offset: offset) { chain in
                try ChainIO.blockStatus(chain, offset: offset, length: UInt64(length), reqOne: reqOne, contexts: contexts)
            }
        default:
            reject(context, cookie: cookie, error: NBD.Errno.einval, isRead: false)
        }
    }

    func submitWrite(_ context: ChannelHandlerContext, cookie: UInt64, offset: UInt64, fua: Bool, payload: ByteBuffer) {
        // A plain overwrite of sectors wholly present in the leaf: pwritten here and answered at
        // once (no chain thread, nothing in flight). FUA writes take the queue (they flush).
        // Else a small one while the chain thread is idle: through the engine, here (no hop).
        // Into a leaf store that may wait on the network: sent from an I/O thread, the chain
        // thread not involved.
        if !fua {
            let started = DispatchTime.now().uptimeNanoseconds
            switch worker.writeFast(payload, offset: offset, started: started) {
            case let .answered(result)?:
                reply(context, cookie: cookie, offset: offset, result: result, isRead: false)
                return
            case let .sending(send)?:
                submit(context, bytes: UInt64(payload.readableBytes), cookie: cookie, offset: offset, isRead: false, send)
                return
            case nil:
                break
            }
            if let result = worker.writeInline(payload, offset: offset, started: started) {
                reply(context, cookie: cookie, offset: offset, result: result, isRead: false)
                return
            }
        }
        if !fua && worker.plansWrites {
            // Its data sent from an I/O thread while the chain thread goes on (an NFS file).
            let worker = self.worker
            submit(context, bytes: UInt64(payload.readableBytes), cookie: cookie, offset: offset, isRead: false) { completion in
                worker.submitPlannedWrite(payload, offset: offset, completion: completion)
            }
            return
        }
        submitWrite(context, .write, cookie: cookie, offset: offset, length: UInt64(payload.readableBytes),
                    mirrored: .write(payload, offset: offset)) { chain in
            try ChainIO.write(chain, payload, offset: offset, fua: fua)
        }
    }

    /// Runs a request that changes `[offset, offset+length)` on the chain thread (see
    /// `ChainWorker.submitWrite`); a running mirror makes the same change (`change`) before the reply.
    func submitWrite(_ context: ChannelHandlerContext, _ kind: DatapathRequestKind, cookie: UInt64, offset: UInt64, length: UInt64,
                     mirrored change: DatapathMirror.Change, _ body: @escaping @Sendable (VHDChain) throws -> NBDCommandResult) {
        let join = MirrorJoin(worker.mirrors, change)
        submit(context, bytes: length, cookie: cookie, offset: offset, isRead: false) { completion in
            self.worker.submitWrite(kind, offset: offset, length: length, join.wrap(body), completion: join.completing(completion))
        }
    }

    /// Runs `body` on the chain thread and replies when it is done (and, for a change, when a
    /// running mirror has made it too).
    func submit(_ context: ChannelHandlerContext, _ kind: DatapathRequestKind, bytes: UInt64, cookie: UInt64, offset: UInt64,
                isRead: Bool = false, mirrored change: DatapathMirror.Change? = nil,
                _ body: @escaping @Sendable (VHDChain) throws -> NBDCommandResult) {
        let join = change.map { MirrorJoin(worker.mirrors, $0) }
        submit(context, bytes: bytes, cookie: cookie, offset: offset, isRead: isRead) { completion in
            self.worker.submit(kind, bytes: bytes, join?.wrap(body) ?? body, completion: join?.completing(completion) ?? completion)
        }
    }

    /// Counts a request in flight, hands it to the worker with `start`, and replies when done
    /// (through the connection's `ReplyMailbox`, with the others finished by then).
    func submit(_ context: ChannelHandlerContext, bytes: UInt64, cookie: UInt64, offset: UInt64, isRead: Bool,
                _ start: (@escaping @Sendable (NBDCommandResult) -> Void) -> Void) {
        inFlight += 1
        inFlightBytes += Int(bytes)
        let mailbox = replyMailbox(context)
        start { mailbox.post(ReplyMailbox.Finished(cookie: cookie, offset: offset, bytes: bytes, isRead: isRead, result: $0)) }
    }

    /// This connection's mailbox, made at its first request.
    func replyMailbox(_ context: ChannelHandlerContext) -> ReplyMailbox {
        if let replies { return replies }
        let made = ReplyMailbox(eventLoop: context.eventLoop) { [weak self, weak context] batch in
            guard let self, let context else { return }
            self.finished(batch, context)
        }
        replies = made
        return made
    }

    /// Replies to requests that finished, then takes more requests and flushes once.
    func finished(_ batch: [ReplyMailbox.Finished], _ context: ChannelHandlerContext) {
        for request in batch {
            inFlight -= 1
            inFlightBytes -= Int(request.bytes)
            reply(context, cookie: request.cookie, offset: request.offset, result: request.result, isRead: request.isRead)
        }
        if !overloaded, phase == .transmission, let c = cumulation, c.readableBytes > 0 {
            process(context: context)
        }
        context.flush()
        if phase == .disconnecting && inFlight == 0 { closeAfterWrites(context); return }
        if readPending && !overloaded {
            readPending = false
            context.read()
        }
    }

    // MARK: - Replies

    func reply(_ context: ChannelHandlerContext, cookie: UInt64, offset: UInt64, result: NBDCommandResult, isRead: Bool) {
        guard phase != .closed else { return }
        switch result {
        case .done:
            replyDone(context, cookie: cookie)
        case .data(let buffer, 0):
            var header = context.channel.allocator.buffer(capacity: 28)
            if !structured {
                NBDReplyEncoder.simple(&header, cookie: cookie, error: 0)
            } else if buffer.readableBytes == 0 {
                NBDReplyEncoder.chunk(&header, flags: NBD.Chunk.flagDone, type: NBD.Chunk.none, cookie: cookie, length: 0)
            } else {
                NBDReplyEncoder.chunk(&header, flags: NBD.Chunk.flagDone, type: NBD.Chunk.offsetData, cookie: cookie,
                                      length: UInt32(8 + buffer.readableBytes))
                header.writeInteger(offset)
            }
            send(context, header)
            if buffer.readableBytes > 0 { send(context, buffer) }
        case .data(var buffer, let room):
            NBDReplyEncoder.fillReadHeader(&buffer, headerRoom: room, structured: structured, cookie: cookie, offset: offset)
            if structured && buffer.readableBytes == room {
                // A zero-length READ: no OFFSET_DATA chunk may be empty.
                var b = context.channel.allocator.buffer(capacity: 20)
                NBDReplyEncoder.chunk(&b, flags: NBD.Chunk.flagDone, type: NBD.Chunk.none, cookie: cookie, length: 0)
                send(context, b)
            } else {
                send(context, buffer)
            }
        case let .status(descriptions):
            var b = context.channel.allocator.buffer(capacity: descriptions.reduce(0) { $0 + 24 + 8 * $1.extents.count })
            for (i, d) in descriptions.enumerated() {
                NBDReplyEncoder.blockStatus(&b, cookie: cookie, id: d.context.rawValue, extents: d.extents,
                                            last: i == descriptions.count - 1)
            }
            send(context, b)
        case let .failed(error):
            replyError(context, cookie: cookie, error: error, isRead: isRead)
        }
    }

    /// READ data sent from the page cache: the reply header, then `count` bytes at `at` of the
    /// file (whose entry counts this region as queued already).
    func replyRegion(_ context: ChannelHandlerContext, cookie: UInt64, offset: UInt64, file: RegionFiles.Entry, at: UInt64, count: Int) {
        guard phase != .closed else { return regionFiles.sent(file) }
        var header = context.channel.allocator.buffer(capacity: 28)
        if structured {
            NBDReplyEncoder.chunk(&header, flags: NBD.Chunk.flagDone, type: NBD.Chunk.offsetData, cookie: cookie, length: UInt32(8 + count))
            header.writeInteger(offset)
        } else {
            NBDReplyEncoder.simple(&header, cookie: cookie, error: 0)
        }
        send(context, header)
        let region = FileRegion(fileHandle: file.handle, readerIndex: Int(at), endIndex: Int(at) + count)
        let promise = context.eventLoop.makePromise(of: Void.self)
        promise.futureResult.assumeIsolated().whenComplete { _ in self.regionFiles.sent(file) }
        context.write(wrapOutboundOut(.fileRegion(region)), promise: promise)
    }

    func replyDone(_ context: ChannelHandlerContext, cookie: UInt64) {
        var b = context.channel.allocator.buffer(capacity: 16)
        NBDReplyEncoder.simple(&b, cookie: cookie, error: 0)
        send(context, b)
    }

    /// Refuses a request without running it (bad flags, range, size; a read-only export): it
    /// counts as a request answered with an error.
    func reject(_ context: ChannelHandlerContext, cookie: UInt64, error: UInt32, isRead: Bool) {
        worker.noteRejected()
        replyError(context, cookie: cookie, error: error, isRead: isRead)
    }

    /// An error: an ERROR chunk for READ once structured replies are on (a simple reply could be
    /// taken for data), else a simple reply.
    func replyError(_ context: ChannelHandlerContext, cookie: UInt64, error: UInt32, isRead: Bool) {
        var b = context.channel.allocator.buffer(capacity: 32)
        if structured {
            NBDReplyEncoder.errorChunk(&b, cookie: cookie, error: error)
        } else {
            NBDReplyEncoder.simple(&b, cookie: cookie, error: error)
        }
        send(context, b)
    }
}
