import NIOCore
import NIOPosix
import NIOSSL

/// The NBD-over-TLS listener `VDI.get_nbd_info` points clients at: TLS is required (FORCEDTLS)
/// with the host's certificate, unless the pool's NBD networks are all marked `insecure_nbd`
/// (NOTLS, as xapi); each connection is an `NBDFrontHandler`.
enum NBDServer {
    /// Binds `host:port` on `group`, resolving export names through `service`.
    static func bind(group: any EventLoopGroup, host: String, port: Int, tls: NIOSSLContext, service: XenAPIService) throws -> any Channel {
        try ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.backlog, value: 64)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    // A client that goes quiet during the handshake is dropped after a minute.
                    try channel.pipeline.syncOperations.addHandler(IdleStateHandler(readTimeout: .seconds(60)))
                    try channel.pipeline.syncOperations.addHandler(NBDFrontHandler(tlsContext: tls, tlsRequired: { service.nbdRequiresTLS }) {
                        (name: String) throws(NBDExportRefusal) -> NBDExport in
                        try service.nbdExport(named: name)
                    })
                }
            }
            .bind(host: host, port: port).wait()
    }
}
