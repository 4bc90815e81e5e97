import Foundation
import NIOCore
import NIOSSL

/// A `ByteStream` over TLS: the channel's event loop feeds what arrives into a pipe the caller
/// reads from (reading from the socket pauses while it is full); sends wait until written.
final class TLSByteStream: ByteStream, @unchecked Sendable {
    private let channel: Channel
    private let feeder: Feeder
    private let trust: TLSTrust

    /// Connects to `host:port`, verifying the server's certificate as `trust` says.
    init(host: String, port: Int, trust: TLSTrust) throws {
        let feeder = Feeder()
        self.feeder = feeder
        self.trust = trust
        channel = try TLSExchange.connect(host: host, port: port, trust: trust, handler: feeder)
        let channel = self.channel
        feeder.pipe = ByteBufferPipe {
            channel.eventLoop.execute {
                channel.setOption(ChannelOptions.autoRead, value: true).whenComplete { _ in channel.read() }
            }
        }
    }

    deinit { close() }

    func send(_ bytes: UnsafeRawBufferPointer) throws {
        var buffer = channel.allocator.buffer(capacity: bytes.count)
        buffer.writeBytes(bytes)
        do { try channel.writeAndFlush(buffer).wait() } catch { throw feeder.failure.map { TLSExchange.explain($0, trust) } ?? TLSExchange.explain(error, trust) }
    }

    func receive(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        do { return try feeder.pipe!.read(into: buffer) } catch { throw feeder.failure.map { TLSExchange.explain($0, trust) } ?? error }
    }

    func close() {
        channel.close(promise: nil)
    }

    /// Hands what the channel reads to the pipe.
    private final class Feeder: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        var pipe: ByteBufferPipe?
        /// The first error the channel reported.
        var failure: (any Error)?

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            if pipe?.append(unwrapInboundIn(data)) == true {
                context.channel.setOption(ChannelOptions.autoRead, value: false).whenComplete { _ in }
            }
        }

        func channelInactive(context: ChannelHandlerContext) {
            pipe?.end()
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            // A server closing without close_notify still sent everything.
            if case NIOSSLError.uncleanShutdown = error { return }
            if failure == nil { failure = error }
            pipe?.fail("\(error)")
            context.close(promise: nil)
        }
    }
}
