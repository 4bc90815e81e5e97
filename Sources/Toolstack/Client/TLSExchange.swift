import Foundation
import NIOCore
import NIOPosix
import NIOSSL

/// One HTTP request over TLS, blocking: connect, send, read until the server closes.
/// The host's certificate is self-signed, so it is not verified (as `xe` does without pinning).
enum TLSExchange {
    private final class Collector: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        var bytes: [UInt8] = []
        let done: EventLoopPromise<[UInt8]>
        init(done: EventLoopPromise<[UInt8]>) { self.done = done }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var buffer = unwrapInboundIn(data)
            bytes += buffer.readBytes(length: buffer.readableBytes) ?? []
        }
        func channelInactive(context: ChannelHandlerContext) { done.succeed(bytes) }
        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            // A server closing without close_notify still gave us the whole answer.
            if case NIOSSLError.uncleanShutdown = error { return }
            done.fail(error)
            context.close(promise: nil)
        }
    }

    /// Sends `request` (a whole HTTP/1.1 request with `Connection: close`) to `host:port`; every byte answered.
    static func exchange(host: String, port: Int, request: [UInt8]) throws -> [UInt8] {
        var config = TLSConfiguration.makeClientConfiguration()
        config.certificateVerification = .none
        let context = try NIOSSLContext(configuration: config)
        let group = MultiThreadedEventLoopGroup.singleton
        let done = group.next().makePromise(of: [UInt8].self)
        let channel = try ClientBootstrap(group: group)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: context, serverHostname: nil))
                    try channel.pipeline.syncOperations.addHandler(Collector(done: done))
                }
            }
            .connect(host: host, port: port).wait()
        var buffer = channel.allocator.buffer(capacity: request.count)
        buffer.writeBytes(request)
        try channel.writeAndFlush(buffer).wait()
        return try done.futureResult.wait()
    }
}
