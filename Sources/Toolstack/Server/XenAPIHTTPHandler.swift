import Foundation
import NIOCore
import NIOHTTP1
import XenAPIWire

/// One HTTP connection to toolstackd: collects a request (refusing bodies over the limit),
/// answers it on a worker thread (calls block), and closes connections that stay idle.
final class XenAPIHTTPHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let service: XenAPIService
    private let transport: Transport
    private let maxBody: Int
    private var head: HTTPRequestHead?
    private var body: [UInt8] = []
    private var tooLarge = false
    /// Whether a call is being answered: a long storage call is not an idle connection.
    private var busy = false
    /// Whether the connection carries a transfer (its body goes to `pipe`, it closes after).
    private var transferring = false
    /// The body of an import, on its way to the thread writing it.
    private var pipe: ByteBufferPipe?

    init(service: XenAPIService, transport: Transport, maxBody: Int) {
        self.service = service
        self.transport = transport
        self.maxBody = maxBody
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h):
            if transferring { return }   // nothing follows a transfer on its connection
            if let route = TransferRoute(h) {
                startTransfer(context: context, head: h, route: route)
                return
            }
            head = h
            body = []
            tooLarge = false
        case .body(let buffer) where transferring:
            if let pipe, pipe.append(buffer) { context.channel.setOption(ChannelOptions.autoRead, value: false).whenComplete { _ in } }
        case .end where transferring:
            pipe?.end()
        case .body(var buffer):
            if body.count + buffer.readableBytes > maxBody {
                tooLarge = true
                body = []
            } else if !tooLarge, let bytes = buffer.readBytes(length: buffer.readableBytes) {
                body += bytes
            }
        case .end:
            guard let head else { return }
            self.head = nil
            respond(context: context, head: head)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        pipe?.fail("the client closed the connection")
        context.fireChannelInactive()
    }

    /// Starts answering a transfer (`/export_raw_vdi`, `/import_raw_vdi`) on a thread of its own:
    /// the request's body, if any, reaches it through a pipe as it arrives.
    private func startTransfer(context: ChannelHandlerContext, head: HTTPRequestHead, route: TransferRoute) {
        transferring = true
        busy = true
        let channel = context.channel
        let response = HTTPStreamResponse(channel: channel, version: head.version)
        let request = TransferRequest(head: head, transport: transport)
        var bodyPipe: ByteBufferPipe?
        if route == .importVDI {
            let body = ByteBufferPipe {
                channel.eventLoop.execute {
                    channel.setOption(ChannelOptions.autoRead, value: true).whenComplete { _ in channel.read() }
                }
            }
            bodyPipe = body
            self.pipe = body
        }
        let service = self.service, pipe = bodyPipe
        let worker = Thread {
            switch route {
            case .exportVDI: service.serveExport(request, response)
            case .importVDI: service.serveImport(request, body: pipe!, response)
            }
        }
        worker.stackSize = 1 << 20
        worker.start()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            if !busy { context.close(promise: nil) }
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    private func respond(context: ChannelHandlerContext, head: HTTPRequestHead) {
        let path = head.uri.split(separator: "?").first.map(String.init) ?? "/"
        if tooLarge {
            send(context: context, head: head, status: .payloadTooLarge, contentType: "text/plain", body: Array("request body too large\n".utf8), close: true)
            return
        }
        guard head.method == .POST else {
            send(context: context, head: head, status: .methodNotAllowed, contentType: "text/plain", body: Array("POST XML-RPC to / or JSON-RPC to /jsonrpc\n".utf8), close: false)
            return
        }
        let json = path == "/jsonrpc"
        guard json || path == "/" || path == "/RPC2" else {
            send(context: context, head: head, status: .notFound, contentType: "text/plain", body: Array("not found\n".utf8), close: false)
            return
        }
        let request = body
        body = []
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        let service = self.service, transport = self.transport
        let loop = context.eventLoop
        busy = true
        // One thread per call, not a bounded pool: a storage call blocks until its plugin exits,
        // and the plugin's callbacks must always find a thread to answer them.
        let worker = Thread {
            let bytes = json ? Self.answerJSON(service, request, transport) : Self.answerXML(service, request, transport)
            loop.execute {
                loopBound.value.0.busy = false
                loopBound.value.0.eventLoopSend(loopBound.value.1, head, bytes, json)
            }
        }
        worker.stackSize = 1 << 20
        worker.start()
    }

    private func eventLoopSend(_ context: ChannelHandlerContext, _ head: HTTPRequestHead, _ bytes: [UInt8], _ json: Bool) {
        send(context: context, head: head, status: .ok, contentType: json ? "application/json" : "text/xml", body: bytes, close: false)
    }

    nonisolated private static func answerXML(_ service: XenAPIService, _ body: [UInt8], _ transport: Transport) -> [UInt8] {
        switch RPCCodec.decodeXML(body) {
        case .success(let call):
            return RPCCodec.encodeXML(service.handle(method: call.methodName, params: call.params, transport: transport))
        case .failure(let failure):
            return RPCCodec.encodeXML(.failure(failure))
        }
    }

    nonisolated private static func answerJSON(_ service: XenAPIService, _ body: [UInt8], _ transport: Transport) -> [UInt8] {
        switch RPCCodec.decodeJSON(body) {
        case .success(let request):
            let outcome = service.handle(method: request.method, params: request.params, transport: transport)
            return RPCCodec.encodeJSON(outcome, id: request.id, version: request.version) { service.json(result: $0, of: request.method) }
        case .failure(let failure):
            return RPCCodec.encodeJSON(.failure(failure), id: nil, version: "2.0")
        }
    }

    private func send(context: ChannelHandlerContext, head: HTTPRequestHead, status: HTTPResponseStatus, contentType: String,
                      body: [UInt8], close: Bool) {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: contentType)
        headers.add(name: "Content-Length", value: String(body.count))
        let keepAlive = head.isKeepAlive && !close
        headers.add(name: "Connection", value: keepAlive ? "keep-alive" : "close")
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))), promise: nil)
        var buffer = context.channel.allocator.buffer(capacity: body.count)
        buffer.writeBytes(body)
        context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !keepAlive {
            let channel = context.channel
            done.whenComplete { _ in channel.close(promise: nil) }
        }
    }
}
