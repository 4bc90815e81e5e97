import Foundation
import NIOCore
import NIOPosix
import NIOSSL

/// One client of the NBD-over-TLS server (the role xapi-nbd plays): the fixed-newstyle greeting,
/// `NBD_OPT_STARTTLS` before anything else (every other option is answered `NBD_REP_ERR_TLS_REQD`),
/// then the export name checked (`/<vdi uuid>?session_id=<ref>`, a valid session) and every option
/// naming it relayed to the VDI's datapath over its unix socket; after `NBD_OPT_GO` (or
/// `NBD_OPT_EXPORT_NAME`) the two connections are spliced byte for byte. Runs on one event loop:
/// the backend channel shares the client's.
final class NBDFrontHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// Resolves an export name to the datapath behind it (may block: it can attach the VDI).
    typealias Resolver = @Sendable (String) throws(NBDExportRefusal) -> NBDExport

    private enum State { case clientFlags, options, busy, transmission, closed }
    private enum BackendStep { case connecting, greeting, structuredReply, ready, replies(UInt32), exportNameReply, transmission }

    private let resolve: Resolver
    private let tlsContext: NIOSSLContext
    private let tlsRequired: @Sendable () -> Bool
    private var state = State.clientFlags
    private var context: ChannelHandlerContext?
    private var inbound = ByteBuffer()
    private var tls = false
    private var clientFlags: UInt32 = 0
    private var structured = false
    private var backend: (any Channel)?
    private var backendStep = BackendStep.connecting
    private var backendInbound = ByteBuffer()
    private var backendNoZeroes = false
    private var frontName: String?
    private var export: NBDExport?
    private var pending: ((String) -> Void)?

    /// A handler presenting `tlsContext`'s certificate, refusing clients that skip STARTTLS
    /// while `tlsRequired` says so, resolving export names with `resolve`.
    init(tlsContext: NIOSSLContext, tlsRequired: @escaping @Sendable () -> Bool = { true }, resolve: @escaping Resolver) {
        self.tlsContext = tlsContext
        self.tlsRequired = tlsRequired
        self.resolve = resolve
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func channelActive(context: ChannelHandlerContext) {
        var greeting = context.channel.allocator.buffer(capacity: 18)
        greeting.writeInteger(NBDProtocol.nbdMagic)
        greeting.writeInteger(NBDProtocol.optionMagic)
        greeting.writeInteger(NBDProtocol.flagFixedNewstyle | NBDProtocol.flagNoZeroes)
        context.writeAndFlush(wrapOutboundOut(greeting), promise: nil)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        inbound.writeBuffer(&bytes)
        process()
    }

    func channelInactive(context: ChannelHandlerContext) {
        finish()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) { finish() }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // Quiet while it is the client's turn in the handshake: gone. Quiet while transmitting is its business.
        if event is IdleStateHandler.IdleStateEvent {
            if state == .clientFlags || state == .options { finish() }
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        // Back-pressure: read the datapath only as fast as the client takes its answers.
        backend?.setOption(ChannelOptions.autoRead, value: context.channel.isWritable).whenFailure { _ in }
        context.fireChannelWritabilityChanged()
    }

    // MARK: - The client's side

    private func process() {
        while true {
            switch state {
            case .clientFlags:
                guard let flags = inbound.readInteger(as: UInt32.self) else { return }
                guard flags & ~UInt32(3) == 0, flags & 1 == 1 else { return finish() }
                clientFlags = flags
                state = .options
            case .options:
                guard inbound.readableBytes >= 16,
                      let magic = inbound.getInteger(at: inbound.readerIndex, as: UInt64.self),
                      let option = inbound.getInteger(at: inbound.readerIndex + 8, as: UInt32.self),
                      let length = inbound.getInteger(at: inbound.readerIndex + 12, as: UInt32.self) else { return }
                guard magic == NBDProtocol.optionMagic, Int(length) <= NBDProtocol.maxOptionLength else { return finish() }
                guard inbound.readableBytes >= 16 + Int(length) else { return }
                inbound.moveReaderIndex(forwardBy: 16)
                let data = inbound.readSlice(length: Int(length))!
                handleOption(option, data)
            case .transmission:
                if inbound.readableBytes > 0, let backend {
                    backend.writeAndFlush(inbound, promise: nil)
                    inbound = ByteBuffer()
                }
                return
            case .busy, .closed:
                return
            }
        }
    }

    private func handleOption(_ option: UInt32, _ data: ByteBuffer) {
        guard let context else { return }
        // FORCEDTLS unless the pool chose NOTLS (its NBD networks all marked insecure_nbd).
        if !tls && (option == NBDProtocol.optStartTLS || tlsRequired()) {
            switch option {
            case NBDProtocol.optStartTLS:
                guard data.readableBytes == 0 else { return reply(option, NBDProtocol.errInvalid, "STARTTLS takes no data") }
                // Nothing may follow STARTTLS in clear before the TLS handshake.
                guard inbound.readableBytes == 0 else { return finish() }
                reply(option, NBDProtocol.repAck)
                do {
                    try context.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tlsContext), position: .first)
                    tls = true
                } catch {
                    finish()
                }
            case NBDProtocol.optAbort:
                reply(option, NBDProtocol.repAck)
                finish()
            case NBDProtocol.optExportName:
                finish()   // no way to answer: refuse by closing
            default:
                reply(option, NBDProtocol.errTLSRequired, "TLS is required: send NBD_OPT_STARTTLS first")
            }
            return
        }
        switch option {
        case NBDProtocol.optStartTLS:
            reply(option, NBDProtocol.errInvalid, "TLS is already on")
        case NBDProtocol.optAbort:
            reply(option, NBDProtocol.repAck)
            finish()
        case NBDProtocol.optStructuredReply:
            guard data.readableBytes == 0 else { return reply(option, NBDProtocol.errInvalid, "no data expected") }
            if backend != nil {
                forward(option, data)
            } else {
                structured = true
                reply(option, NBDProtocol.repAck)
            }
        case NBDProtocol.optList:
            reply(option, NBDProtocol.errPolicy, "exports are not listed: ask VDI.get_nbd_info")
        case NBDProtocol.optInfo, NBDProtocol.optGo, NBDProtocol.optListMetaContext, NBDProtocol.optSetMetaContext:
            var d = data
            guard let length = d.readInteger(as: UInt32.self), Int(length) <= d.readableBytes,
                  let name = d.readString(length: Int(length)) else {
                return reply(option, NBDProtocol.errInvalid, "malformed option")
            }
            let rest = d
            withExport(name, option) { [self] backendName in
                var payload = ByteBuffer()
                payload.writeInteger(UInt32(backendName.utf8.count))
                payload.writeString(backendName)
                var tail = rest
                payload.writeBuffer(&tail)
                forward(option, payload)
            }
        case NBDProtocol.optExportName:
            var d = data
            let name = d.readString(length: d.readableBytes) ?? ""
            withExport(name, option) { [self] backendName in
                var payload = ByteBuffer()
                payload.writeString(backendName)
                forward(option, payload)
                backendStep = .exportNameReply
            }
        default:
            reply(option, NBDProtocol.errUnsup, "unsupported option")
        }
    }

    private func reply(_ option: UInt32, _ type: UInt32, _ message: String = "") {
        var data = ByteBuffer()
        data.writeString(message)
        replyRaw(option, type, data)
    }

    private func replyRaw(_ option: UInt32, _ type: UInt32, _ data: ByteBuffer) {
        guard let context, state != .closed else { return }
        var out = context.channel.allocator.buffer(capacity: 20 + data.readableBytes)
        out.writeInteger(NBDProtocol.replyMagic)
        out.writeInteger(option)
        out.writeInteger(type)
        out.writeInteger(UInt32(data.readableBytes))
        var d = data
        out.writeBuffer(&d)
        context.writeAndFlush(wrapOutboundOut(out), promise: nil)
    }

    /// Runs `body` with the datapath's export name once the export `name` is resolved and its
    /// backend connection is through its handshake; refuses the option otherwise.
    private func withExport(_ name: String, _ option: UInt32, _ body: @escaping (String) -> Void) {
        if let export {
            guard name == frontName else {
                if option == NBDProtocol.optExportName { return finish() }
                return reply(option, NBDProtocol.errPolicy, "one export per connection")
            }
            return body(export.exportName)
        }
        guard let context else { return }
        state = .busy
        let loop = context.eventLoop
        let bound = NIOLoopBound((self, body), eventLoop: loop)
        let resolve = self.resolve
        // Resolving may attach the VDI (the plugin runs): not on the event loop.
        Thread {
            let result = Result<NBDExport, NBDExportRefusal> { () throws(NBDExportRefusal) in try resolve(name) }
            loop.execute { bound.value.0.resolved(name, option, result, bound.value.1) }
        }.start()
    }

    private func resolved(_ name: String, _ option: UInt32, _ result: Result<NBDExport, NBDExportRefusal>, _ body: @escaping (String) -> Void) {
        guard state != .closed, let context else {
            if case .success(let e) = result { Thread { e.release() }.start() }
            return
        }
        switch result {
        case .failure(let refusal):
            if option == NBDProtocol.optExportName { return finish() }
            state = .options
            reply(option, refusal.replyType, refusal.message)
            process()
        case .success(let e):
            export = e
            frontName = name
            pending = body
            backendStep = .connecting
            let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
            let bootstrap = ClientBootstrap(group: context.eventLoop)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(NBDBackendHandler(front: bound))
                    }
                }
            let connected: EventLoopFuture<any Channel>
            do {
                connected = bootstrap.withConnectedSocket(try UnixSocketConnection.connect(e.socketPath))
            } catch {
                connected = context.eventLoop.makeFailedFuture(error)
            }
            connected
                .hop(to: context.eventLoop)
                .whenComplete { outcome in
                    let me = bound.value
                    switch outcome {
                    case .success(let channel):
                        guard me.state != .closed else { channel.close(promise: nil); return }
                        me.backend = channel
                        me.backendStep = .greeting
                        me.processBackend()
                    case .failure:
                        // Never on the event loop: releasing runs the plugin, whose callbacks need it.
                        if let release = me.export?.release { Thread { release() }.start() }
                        me.export = nil
                        me.frontName = nil
                        if option == NBDProtocol.optExportName { return me.finish() }
                        me.state = .options
                        me.reply(option, NBDProtocol.errPlatform, "the datapath cannot be reached")
                        me.process()
                    }
                }
        }
    }

    // MARK: - The datapath's side

    /// Bytes from the datapath.
    func backendRead(_ buffer: ByteBuffer) {
        var b = buffer
        backendInbound.writeBuffer(&b)
        processBackend()
    }

    /// The datapath closed its end.
    func backendClosed() {
        backend = nil
        finish()
    }

    /// The datapath's connection can take more (or no more) bytes.
    func backendWritabilityChanged(_ writable: Bool) {
        context?.channel.setOption(ChannelOptions.autoRead, value: writable).whenFailure { _ in }
    }

    private func processBackend() {
        guard let backend, let context else { return }
        while true {
            switch backendStep {
            case .connecting, .ready:
                return
            case .greeting:
                guard backendInbound.readableBytes >= 18 else { return }
                let magic = backendInbound.readInteger(as: UInt64.self)!
                let second = backendInbound.readInteger(as: UInt64.self)!
                let flags = backendInbound.readInteger(as: UInt16.self)!
                guard magic == NBDProtocol.nbdMagic, second == NBDProtocol.optionMagic, flags & NBDProtocol.flagFixedNewstyle != 0 else {
                    return finish()
                }
                let send = clientFlags & UInt32(flags) & 3
                backendNoZeroes = send & UInt32(NBDProtocol.flagNoZeroes) != 0
                var out = backend.allocator.buffer(capacity: 4)
                out.writeInteger(send)
                backend.writeAndFlush(out, promise: nil)
                if structured {
                    sendOption(NBDProtocol.optStructuredReply, ByteBuffer())
                    backendStep = .structuredReply
                } else {
                    backendReady()
                }
            case .structuredReply:
                guard let reply = readBackendReply() else { return }
                guard reply.type == NBDProtocol.repAck else { return finish() }
                backendReady()
            case .replies(let option):
                guard let reply = readBackendReply() else { return }
                let type = reply.type, data = reply.data
                var forwarded = data
                if type == NBDProtocol.repInfo, data.getInteger(at: data.readerIndex, as: UInt16.self) == NBDProtocol.infoName {
                    // The datapath's own name for the export stays inside.
                    forwarded = ByteBuffer()
                    forwarded.writeInteger(NBDProtocol.infoName)
                    forwarded.writeString(frontName ?? "")
                }
                replyRaw(option, type, forwarded)
                if type == NBDProtocol.repAck || type & 0x8000_0000 != 0 {
                    if option == NBDProtocol.optGo && type == NBDProtocol.repAck { return enterTransmission() }
                    backendStep = .ready
                    state = .options
                    process()
                    return
                }
            case .exportNameReply:
                let needed = 10 + (backendNoZeroes ? 0 : 124)
                guard backendInbound.readableBytes >= needed else { return }
                let size = backendInbound.readInteger(as: UInt64.self)!
                let flags = backendInbound.readInteger(as: UInt16.self)!
                backendInbound.moveReaderIndex(forwardBy: needed - 10)
                var out = context.channel.allocator.buffer(capacity: 134)
                out.writeInteger(size)
                out.writeInteger(flags)
                if clientFlags & UInt32(NBDProtocol.flagNoZeroes) == 0 { out.writeRepeatingByte(0, count: 124) }
                context.writeAndFlush(wrapOutboundOut(out), promise: nil)
                return enterTransmission()
            case .transmission:
                if backendInbound.readableBytes > 0 {
                    context.writeAndFlush(wrapOutboundOut(backendInbound), promise: nil)
                    backendInbound = ByteBuffer()
                }
                return
            }
        }
    }

    private func backendReady() {
        backendStep = .ready
        if let body = pending, let name = export?.exportName {
            pending = nil
            body(name)
        }
    }

    /// Sends one option to the datapath and waits for its replies, relaying them.
    private func forward(_ option: UInt32, _ payload: ByteBuffer) {
        state = .busy
        backendStep = .replies(option)
        sendOption(option, payload)
    }

    private func sendOption(_ option: UInt32, _ payload: ByteBuffer) {
        guard let backend else { return }
        var out = backend.allocator.buffer(capacity: 16 + payload.readableBytes)
        out.writeInteger(NBDProtocol.optionMagic)
        out.writeInteger(option)
        out.writeInteger(UInt32(payload.readableBytes))
        var p = payload
        out.writeBuffer(&p)
        backend.writeAndFlush(out, promise: nil)
    }

    /// One whole option reply from the datapath: option, type, data; nil until it has all arrived.
    private func readBackendReply() -> (option: UInt32, type: UInt32, data: ByteBuffer)? {
        let start = backendInbound.readerIndex
        guard backendInbound.readableBytes >= 20,
              let length = backendInbound.getInteger(at: start + 16, as: UInt32.self),
              backendInbound.readableBytes >= 20 + Int(length) else { return nil }
        guard backendInbound.readInteger(as: UInt64.self) == NBDProtocol.replyMagic else { finish(); return nil }
        let option = backendInbound.readInteger(as: UInt32.self)!
        let type = backendInbound.readInteger(as: UInt32.self)!
        backendInbound.moveReaderIndex(forwardBy: 4)
        let data = backendInbound.readSlice(length: Int(length))!
        return (option, type, data)
    }

    private func enterTransmission() {
        backendStep = .transmission
        state = .transmission
        processBackend()
        process()
    }

    /// Closes both connections and releases the export once.
    private func finish() {
        guard state != .closed else { return }
        state = .closed
        backend?.close(promise: nil)
        backend = nil
        context?.close(promise: nil)
        if let export {
            self.export = nil
            let release = export.release
            Thread { release() }.start()
        }
    }
}
