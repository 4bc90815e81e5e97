import Foundation
import NIOCore
import NIOPosix
import NIOSSL
#if canImport(Glibc)
import Glibc
#endif

/// One HTTP request over TLS, blocking: connect, send, read until the server closes. The server's
/// certificate is verified as `trust` says (its name checked against the host connected to).
enum TLSExchange {
    /// The server's certificate was refused.
    struct Untrusted: Error, CustomStringConvertible {
        /// Why, from the TLS library.
        var reason: String
        /// What went wrong and what to do.
        var description: String {
            "the server's TLS certificate could not be verified (\(reason)); give the host's certificate with "
                + "--cafile FILE (host.get_server_certificate prints it), or --no-verify to accept any"
        }
    }

    private final class Collector: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        var bytes: [UInt8] = []
        let done: EventLoopPromise<[UInt8]>
        init(done: EventLoopPromise<[UInt8]>) { self.done = done }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var buffer = unwrapInboundIn(data)
            bytes += buffer.readBytes(length: buffer.readableBytes) ?? []
        }
        var finished = false
        func channelInactive(context: ChannelHandlerContext) {
            guard !finished else { return }
            finished = true
            done.succeed(bytes)
        }
        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            // A server closing without close_notify still gave us the whole answer.
            if case NIOSSLError.uncleanShutdown = error { return }
            if !finished {
                finished = true
                done.fail(error)
            }
            context.close(promise: nil)
        }
    }

    /// Sends `request` (a whole HTTP/1.1 request with `Connection: close`) to `host:port`; every byte answered.
    static func exchange(host: String, port: Int, request: [UInt8], trust: TLSTrust) throws -> [UInt8] {
        let group = MultiThreadedEventLoopGroup.singleton
        let done = group.next().makePromise(of: [UInt8].self)
        let channel = try connect(host: host, port: port, trust: trust, handler: Collector(done: done))
        var buffer = channel.allocator.buffer(capacity: request.count)
        buffer.writeBytes(request)
        do {
            // A refused handshake fails the write too: the answer (or the TLS error) is in `done`.
            channel.writeAndFlush(buffer, promise: nil)
            return try done.futureResult.wait()
        } catch {
            throw explain(error, trust)
        }
    }

    /// A TLS connection to `host:port` whose plaintext goes to `handler`; the server's
    /// certificate is verified as `trust` says, its name checked against `host`.
    static func connect(host: String, port: Int, trust: TLSTrust, handler: any ChannelHandler & Sendable) throws -> Channel {
        var config = TLSConfiguration.makeClientConfiguration()
        switch trust {
        case .anyCertificate: config.certificateVerification = .none
        case .systemRoots: config.certificateVerification = .fullVerification
        case .file(let path):
            config.certificateVerification = .fullVerification
            config.trustRoots = .file(path)
        }
        let context = try NIOSSLContext(configuration: config)
        var v4 = in_addr(), v6 = in6_addr()
        let isIPAddress = inet_pton(AF_INET, host, &v4) == 1 || inet_pton(AF_INET6, host, &v6) == 1
        return try ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    // A name is checked against the certificate's names (and sent as SNI); an IP
                    // address (no SNI) against its IP addresses, by the address connected to.
                    try channel.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: context,
                                                                                            serverHostname: isIPAddress ? nil : host))
                    try channel.pipeline.syncOperations.addHandler(handler)
                }
            }
            .connect(host: host, port: port).wait()
    }

    /// `error` of a TLS connection, as `Untrusted` when the server's certificate was refused.
    static func explain(_ error: any Error, _ trust: TLSTrust) -> any Error {
        guard trust != .anyCertificate else { return error }
        if let e = error as? NIOSSLError, case .handshakeFailed(let inner) = e { return Untrusted(reason: "\(inner)") }
        if let e = error as? NIOSSLExtraError { return Untrusted(reason: "\(e)") }   // the certificate does not name the host
        return error
    }
}
