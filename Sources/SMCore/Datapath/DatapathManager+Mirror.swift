import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A live migration on this host, as the datapaths see it: the source VDI's datapath mirrors its
/// changes to the destination leaf's datapath, then switches over to the destination leaf and
/// becomes its datapath, while its clients stay connected.
extension DatapathManager {
    /// Has the running datapath of `vdi` (SR `sr`) mirror every change to the running datapath
    /// of `destinationVDI` (SR `destinationSR`) from now on.
    public func startMirror(sr: String, vdi: String, destinationSR: String, destinationVDI: String) throws {
        try requireRunning(sr: destinationSR, vdi: destinationVDI)
        let ran = try control(sr: sr, vdi: vdi) { control in
            _ = try control.send("mirror \(destinationSR) \(destinationVDI)")
        }
        guard ran else { throw DatapathError.mirror("VDI \(vdi) has no datapath on this host") }
        log.info("datapath of \(vdi) mirrors to \(destinationVDI)")
    }

    /// The footer uuids of the chain `vdi`'s running datapath has open, leaf first (empty while
    /// it is paused); `DatapathError.mirror` when none runs here.
    public func layers(sr: String, vdi: String) throws -> [String] {
        var layers: [String] = []
        let ran = try control(sr: sr, vdi: vdi) { control in layers = try control.stats().layers }
        guard ran else { throw DatapathError.mirror("VDI \(vdi) has no datapath on this host") }
        return layers
    }

    /// Stops the mirror of `vdi`'s datapath, if one runs (a migration that is given up).
    public func stopMirror(sr: String, vdi: String) throws {
        _ = try control(sr: sr, vdi: vdi) { control in
            if let stats = try? control.stats(), stats.mirrorTarget == nil { return }
            _ = try? control.send("mirror-stop")
        }
    }

    /// The switch: the source's datapath is paused (its requests held), its mirror drained and
    /// forced to disk, the destination's datapath closed, and the source's reopened on the
    /// destination leaf (driver `destinationDriver`), becoming that VDI's datapath (its pid and
    /// sockets in that VDI's folder, the destination's activation count kept); the held
    /// requests then run there. Returns how long requests were held. On failure the source's
    /// datapath goes on serving the source (a destination datapath already closed stays closed).
    @discardableResult
    public func switchOver(sr: String, vdi: String, destinationDriver: String, destinationSR: String,
                           destinationVDI: String) throws -> Double {
        let source = run.datapath(sr: sr, vdi: vdi), destination = run.datapath(sr: destinationSR, vdi: destinationVDI)
        let locks = [run.vdiLock(vdi), run.vdiLock(destinationVDI)]
        for l in locks { try l.lock(timeout: 120) }
        defer { for l in locks.reversed() { l.unlock() } }
        guard let pid = runningPID(source) else { throw DatapathError.mirror("VDI \(vdi) has no datapath on this host") }
        guard let destinationPID = runningPID(destination) else {
            throw DatapathError.mirror("VDI \(destinationVDI) has no datapath on this host")
        }
        let control = DatapathControlClient(socketPath: source.controlSocket)
        guard try control.stats().mirrorTarget == destinationVDI else {
            throw DatapathError.mirror("VDI \(vdi) does not mirror to \(destinationVDI)")
        }
        _ = try control.send("flush")
        let start = Date()
        do {
            _ = try control.send("pause")
            _ = try control.send("mirror-stop")
            try stop(destinationPID, destination)
            unlink(destination.pidFile)
            _ = try control.send("switch \(destinationDriver) \(destinationSR) \(destinationVDI)")
        } catch {
            _ = try? control.send("mirror-stop")
            _ = try? DatapathControlClient(socketPath: source.controlSocket).send("unpause")
            throw error
        }
        let held = Date().timeIntervalSince(start)
        try atomicWrite(destination.pidFile, "\(pid)\n")
        unlink(source.pidFile)
        log.info("datapath of \(vdi) switched to \(destinationVDI) of SR \(destinationSR); requests held \(String(format: "%.3f", held)) s")
        return held
    }

    private func requireRunning(sr: String, vdi: String) throws {
        guard runningPID(run.datapath(sr: sr, vdi: vdi)) != nil else {
            throw DatapathError.mirror("VDI \(vdi) has no datapath on this host")
        }
    }
}
