import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// toolstackd's listeners: the local unix socket (mode 0600, its directory 0700 when created
/// here) and, when asked, TCP (TLS with the host's self-signed certificate unless plain HTTP is asked); both speak XML-RPC on `/` and JSON-RPC on `/jsonrpc`.
public final class XenAPIServer: @unchecked Sendable {
    private let service: XenAPIService
    private let group: MultiThreadedEventLoopGroup
    private var channels: [any Channel] = []
    /// The TCP port actually bound (useful with port 0).
    public private(set) var boundPort: Int?

    /// A server for `service`.
    public init(service: XenAPIService) {
        self.service = service
        group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
    }

    /// Starts listening as configured.
    public func start() throws {
        let config = service.configuration
        let socketDirectory = (config.socketPath as NSString).deletingLastPathComponent
        if !FileManager.default.fileExists(atPath: socketDirectory) {
            try FileManager.default.createDirectory(atPath: socketDirectory, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o700])
        }
        let unix = try bootstrap(.local).bind(unixDomainSocketPath: config.socketPath, cleanupExistingSocketFile: true).wait()
        chmod(config.socketPath, 0o600)
        channels.append(unix)
        if let port = config.port {
            let tcp = try bootstrap(.network, tls: config.tls ? try Self.tlsContext(config) : nil).bind(host: config.bindAddress, port: port).wait()
            boundPort = tcp.localAddress?.port
            channels.append(tcp)
        }
        if let port = config.nbdPort {
            let nbd = try NBDServer.bind(group: group, host: config.bindAddress, port: port, tls: try Self.tlsContext(config), service: service)
            service.nbdPort = nbd.localAddress?.port
            service.publishNBD(port: service.nbdPort)
            channels.append(nbd)
        } else {
            service.publishNBD(port: nil)   // no server here now, whatever an earlier run said
        }
    }

    /// A TLS server context with the host's certificate (made at first start).
    private static func tlsContext(_ config: ToolstackConfiguration) throws -> NIOSSLContext {
        let pem = try ServerCertificate.ensure(config)
        let chain = try NIOSSLCertificate.fromPEMFile(pem).map { NIOSSLCertificateSource.certificate($0) }
        let key = try NIOSSLPrivateKey(file: pem, format: .pem)
        return try NIOSSLContext(configuration: .makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(key)))
    }

    private func bootstrap(_ transport: Transport, tls: NIOSSLContext? = nil) -> ServerBootstrap {
        let service = self.service
        let maxBody = service.configuration.maxBodyBytes
        let idle = TimeAmount.seconds(service.configuration.idleTimeout)
        return ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.backlog, value: 256)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls { try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls)) }
                    try channel.pipeline.syncOperations.addHandler(IdleStateHandler(readTimeout: idle))
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(
                        XenAPIHTTPHandler(service: service, transport: transport, maxBody: maxBody))
                }
            }
    }

    /// Blocks until the listeners close.
    public func wait() throws {
        for c in channels { try c.closeFuture.wait() }
    }

    /// Closes the listeners and stops the event loops.
    public func stop() {
        if service.nbdPort != nil { service.publishNBD(port: nil) }
        service.nbdPort = nil
        for c in channels { try? c.close().wait() }
        channels = []
        try? group.syncShutdownGracefully()
    }
}
