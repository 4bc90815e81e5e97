import Foundation
import Logging
import NIOCore
import NIOPosix

/// One VDI's data path (the role tapdisk plays): the VHD chain on its own thread, an NBD server
/// on a unix socket (and TCP on 127.0.0.1 when asked), and a control socket for pause, unpause,
/// stats and close. Runs inside `swiftsm-datapath`, or in-process in tests.
public final class Datapath: @unchecked Sendable {
    /// What is served (another VDI after a live migration's switch, `rehome`).
    public var configuration: DatapathConfiguration { lock.withLock { configurationValue } }
    /// Rebuilds an SR's container from its recorded plug (set by `serve`): what `rehome` opens
    /// the destination through.
    public var containerFactory: (@Sendable (DatapathConfiguration) throws -> any VolumeContainer)?
    /// The chain thread.
    public let worker: ChainWorker
    /// The log (SMlog lines tagged with the SR and VDI served).
    public var log: Logger { lock.withLock { logValue } }
    let group: MultiThreadedEventLoopGroup
    private let lock = NSCondition()
    // Guarded by `lock`.
    private var servers: [Channel] = []
    private var connections: [ObjectIdentifier: Channel] = [:]
    private var state = State.created
    private var boundTCPPort: Int?
    private var configurationValue: DatapathConfiguration
    private var logValue: Logger

    enum State { case created, running, closing, closed }

    /// Opens the chain of volume `leaf` of `container` (default: the VDI's VHD) without binding
    /// anything yet; fails if it cannot be opened.
    public init(configuration: DatapathConfiguration, container: any VolumeContainer, leaf: String? = nil,
                log: Logger? = nil) throws {
        self.configurationValue = configuration
        var l = log ?? Logger(label: "datapath")
        l[metadataKey: "sr"] = "\(configuration.srUUID)"
        l[metadataKey: "vdi"] = "\(configuration.vdiUUID)"
        self.logValue = l
        worker = try ChainWorker(container: container, leaf: leaf ?? container.naming.volume(configuration.vdiUUID),
                                 writable: !configuration.readOnly)
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    }

    /// The TCP port bound on 127.0.0.1, if any.
    public var tcpPort: Int? { lock.withLock { boundTCPPort } }

    /// Counters of the chain thread plus the TCP port.
    public func statistics() -> DatapathStats {
        var s = worker.statistics()
        s.tcpPort = tcpPort
        return s
    }

    /// Binds the NBD socket(s) and the control socket; the datapath serves from here on.
    public func start() throws {
        let dir = configuration.directory
        try FileManager.default.createDirectory(atPath: dir.path, withIntermediateDirectories: true)
        guard dir.socketPathsFit else { throw DatapathError.socketPathTooLong(dir.nbdSocket) }
        do {
            let nbd = try nbdBootstrap(tcp: false)
                .withBoundSocket(try UnixListener.listen(dir.nbdSocket)).wait()
            lock.withLock { servers.append(nbd); state = .running }
            if let port = configuration.tcpPort {
                let tcp = try nbdBootstrap(tcp: true).bind(host: "127.0.0.1", port: port).wait()
                let bound = tcp.localAddress?.port
                lock.withLock { servers.append(tcp); boundTCPPort = bound }
                if let b = bound { try? Data("\(b)\n".utf8).write(to: URL(fileURLWithPath: dir.tcpPortFile)) }
            }
            let control = try ServerBootstrap(group: group)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelInitializer { [self] channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(DatapathControlHandler(datapath: self))
                    }
                }
                .withBoundSocket(try UnixListener.listen(dir.controlSocket)).wait()
            lock.withLock { servers.append(control) }
        } catch {
            shutdown()
            throw DatapathError.bind("\(error)")
        }
        let tcpText = tcpPort.map { " and 127.0.0.1:\($0)" } ?? ""
        log.info("datapath serving \(worker.statistics().leaf) as \(configuration.exportName) on \(dir.nbdSocket)\(tcpText)\(configuration.readOnly ? " (read-only)" : "")")
    }

    /// The export new connections see.
    private var export: NBDExport {
        let c = configuration
        return NBDExport(name: c.exportName, description: "SwiftSM VDI \(c.vdiUUID) of SR \(c.srUUID)", readOnly: c.readOnly)
    }

    private func nbdBootstrap(tcp: Bool) -> ServerBootstrap {
        var b = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 64)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 4096, initial: 64 << 10,
                                                                                        maximum: 1 << 20))
        b = b.childChannelOption(.writeBufferWaterMark, value: .init(low: 512 << 10, high: 2 << 20))
        if tcp { b = b.childChannelOption(.socketOption(.tcp_nodelay), value: 1) }
        return b.childChannelInitializer { [self] channel in
            let accepted: Bool = lock.withLock {
                guard state == .running else { return false }
                connections[ObjectIdentifier(channel)] = channel
                return true
            }
            guard accepted else { return channel.close() }
            channel.closeFuture.whenComplete { [self] _ in
                lock.withLock { _ = connections.removeValue(forKey: ObjectIdentifier(channel)) }
            }
            return channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(NBDConnectionHandler(export: self.export, worker: worker))
            }
        }
    }

    /// Stops serving: closes the listening sockets, flushes and closes the chain (held requests
    /// fail with ESHUTDOWN), closes the connections and the event loop, removes the sockets.
    /// Must not be called on the datapath's event loop (see `shutdownInBackground`).
    public func shutdown() {
        let (listeners, shouldRun): ([Channel], Bool) = lock.withLock {
            guard state != .closing && state != .closed else { return ([], false) }
            state = .closing
            return (servers, true)
        }
        guard shouldRun else {
            waitUntilClosed()
            return
        }
        for s in listeners { try? s.close().wait() }
        do { try worker.closeAndWait() } catch { log.error("closing the chain: \(error)") }
        worker.join()
        let open = lock.withLock { Array(connections.values) }
        for c in open { try? c.close().wait() }
        try? group.syncShutdownGracefully()
        let dir = configuration.directory
        for f in [dir.nbdSocket, dir.controlSocket, dir.tcpPortFile] { unlink(f) }
        log.info("datapath closed")
        lock.withLock {
            state = .closed
            lock.broadcast()
        }
    }

    /// `shutdown` on another thread (for the control socket's `close`, which runs on the event loop).
    public func shutdownInBackground() {
        Thread.detachNewThread { [self] in shutdown() }
    }

    /// Blocks until the datapath is closed.
    public func waitUntilClosed() {
        lock.withLock { while state != .closed { lock.wait() } }
    }

    /// Whether `shutdown` has finished.
    public var isClosed: Bool { lock.withLock { state == .closed } }

    /// The `swiftsm-datapath` process: serve `configuration` until `close` or SIGTERM/SIGINT,
    /// logging to SMlog and stderr, with the SR's container made by `container` (from the SR's
    /// recorded plug). Returns the exit status.
    public static func serve(_ configuration: DatapathConfiguration,
                             container makeContainer: @escaping @Sendable (DatapathConfiguration) throws -> any VolumeContainer) -> Int32 {
        signal(SIGPIPE, SIG_IGN)
        // A few threads passing big buffers around: keep freed memory in two malloc arenas
        // (glibc's mallopt(M_ARENA_MAX = -8, 2); malloc.h is not visible to Swift), and take
        // READ buffers up to 4 MiB from them rather than from a fresh mmap each (M_MMAP_THRESHOLD
        // = -3; M_TRIM_THRESHOLD = -1 keeps the top of the heap from going back and forth).
        if let sym = dlsym(nil, "mallopt") {
            let mallopt = unsafeBitCast(sym, to: (@convention(c) (Int32, Int32) -> Int32).self)
            _ = mallopt(-8, 2)
            _ = mallopt(-3, (4 << 20) + (64 << 10))
            _ = mallopt(-1, 16 << 20)
        }
        let logger = Logger(label: "datapath") { label in
            SMLogHandler(label: label, path: configuration.run.logFile, echo: true)
        }
        let datapath: Datapath
        do {
            datapath = try Datapath(configuration: configuration, container: try makeContainer(configuration), log: logger)
            datapath.containerFactory = makeContainer
            try datapath.start()
        } catch {
            logger.error("datapath failed to start: \(error)")
            return 1
        }
        var sources: [DispatchSourceSignal] = []
        for sig in [SIGTERM, SIGINT] {
            signal(sig, SIG_IGN)
            let s = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            s.setEventHandler { datapath.shutdownInBackground() }
            s.resume()
            sources.append(s)
        }
        datapath.waitUntilClosed()
        sources.forEach { $0.cancel() }
        return 0
    }

    // MARK: - Live migration

    /// Starts mirroring every change to the datapath of VDI `vdi` of SR `sr` on this host (the
    /// destination's leaf, same size), until `stopMirror`.
    public func startMirror(sr: String, vdi: String) throws {
        guard !configuration.readOnly else { throw DatapathError.mirror("a read-only datapath makes no changes to mirror") }
        guard worker.mirrors.current == nil else { throw DatapathError.mirror("a mirror runs already") }
        let target = configuration.run.datapath(sr: sr, vdi: vdi)
        let mirror = try DatapathMirror(socketPath: target.nbdSocket, exportName: vdi, size: worker.virtualSize)
        worker.mirrors.current = mirror
        log.info("mirroring changes to VDI \(vdi) of SR \(sr)")
    }

    /// Stops the mirror once the changes sent to it are made and forced to disk there; the bytes
    /// it mirrored. Fails when it had failed (the destination then lacks changes).
    @discardableResult
    public func stopMirror() throws -> UInt64 {
        guard let mirror = worker.mirrors.current else { throw DatapathError.mirror("no mirror runs") }
        defer { worker.mirrors.current = nil }
        try mirror.stop()
        let bytes = mirror.status.bytes
        log.info("mirror to \(mirror.status.target) stopped after \(bytes) bytes")
        return bytes
    }

    /// A live migration's switch: the paused chain is reopened on VDI `vdi` of SR `sr` (driver
    /// `driver`), whose datapath has closed, and this process becomes that VDI's datapath: its
    /// sockets, log and working directory move to that VDI's folder. Connected clients carry on
    /// unaware. On failure the chain stays paused where it was.
    public func rehome(driver: String, sr: String, vdi: String) throws {
        guard worker.isPaused else { throw DatapathError.mirror("pause the datapath before it switches") }
        guard worker.mirrors.current == nil else { throw DatapathError.mirror("stop the mirror before switching") }
        guard let factory = containerFactory else { throw DatapathError.mirror("this datapath cannot open another SR") }
        let old = configuration
        var new = old
        new.driver = driver
        new.srUUID = sr
        new.vdiUUID = vdi
        new.exportName = vdi
        new.directory = old.run.datapath(sr: sr, vdi: vdi)
        guard new.directory.socketPathsFit else { throw DatapathError.socketPathTooLong(new.directory.nbdSocket) }
        try FileManager.default.createDirectory(atPath: new.directory.path, withIntermediateDirectories: true)
        guard !DatapathControlClient(socketPath: new.directory.controlSocket, timeout: 1).ping() else {
            throw DatapathError.mirror("the destination's datapath still runs")
        }
        for f in [new.directory.nbdSocket, new.directory.controlSocket] { unlink(f) }     // a closed one's leftovers
        let container = try factory(new)
        try worker.unpauseAndWait(container: container, leaf: container.naming.volume(vdi))
        let (from, to) = (old.directory, new.directory)
        for (a, b) in [(from.nbdSocket, to.nbdSocket), (from.controlSocket, to.controlSocket),
                       (from.tcpPortFile, to.tcpPortFile), (from.logFile, to.logFile)] where access(a, F_OK) == 0 {
            if rename(a, b) != 0 { log.warning("moving \(a) to \(b): \(String(cString: strerror(errno)))") }
        }
        _ = chdir(to.path)
        lock.withLock {
            configurationValue = new
            logValue[metadataKey: "sr"] = "\(sr)"
            logValue[metadataKey: "vdi"] = "\(vdi)"
        }
        log.info("switched to VDI \(vdi) of SR \(sr) (driver \(driver)); serving from \(to.path)")
    }
}
