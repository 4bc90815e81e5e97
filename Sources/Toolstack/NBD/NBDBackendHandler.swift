import NIOCore

/// The NBD server's connection to a VDI's datapath (its unix socket): hands every byte and the
/// close to the client's handler, which runs on the same event loop.
final class NBDBackendHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer

    private let front: NIOLoopBound<NBDFrontHandler>

    init(front: NIOLoopBound<NBDFrontHandler>) { self.front = front }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        front.value.backendRead(unwrapInboundIn(data))
    }

    func channelInactive(context: ChannelHandlerContext) {
        front.value.backendClosed()
        context.fireChannelInactive()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        front.value.backendWritabilityChanged(context.channel.isWritable)
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) { context.close(promise: nil) }
}
