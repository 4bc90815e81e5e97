import Foundation
import XenAPIWire

/// NBD access to VDIs as xapi gives it: `VDI.get_nbd_info` names this host's NBD-over-TLS server
/// for every NBD-enabled network, and a connection's export name (`/<vdi uuid>?session_id=<ref>`)
/// is resolved to the VDI's datapath, attaching the VDI for the connection when no VBD has.
extension XenAPIService {
    /// `VDI.get_nbd_info`: one record per address of a host that has the VDI's SR plugged and
    /// runs an NBD server, on a network whose `purpose` holds `nbd` or `insecure_nbd`; empty
    /// when there is none.
    /// Each host of a pool publishes its server (port, certificate) on its record.
    func vdiGetNBDInfo(_ c: APICall) throws -> XMLRPCValue {
        try c.arity(1)
        let ref = try c.string(0, "self")
        let vdi = try db.read { v in try v.get("VDI", ref) }
        if vdi.string("type") == "cbt_metadata" { throw APIFailure("VDI_INCOMPATIBLE_TYPE", ref, "cbt_metadata") }
        let exportName = "/\(vdi.uuid)?session_id=\(c.session)"
        let records: [XMLRPCValue] = db.read { v in
            let hosts = v.whereField("PBD", "SR", is: vdi.string("SR")).filter { $0.bool("currently_attached") }.map { $0.string("host") }
            let networks = Set(v.all("network").filter { !Set($0.strings("purpose")).isDisjoint(with: ["nbd", "insecure_nbd"]) }.map(\.ref))
            return hosts.flatMap { hostRef -> [XMLRPCValue] in
                guard let host = v.find("host", hostRef), let port = host.map("other_config")["nbd_port"] else { return [] }
                let cert = host.string("server_certificate")
                guard !cert.isEmpty else { return [] }
                let addresses = v.whereField("PIF", "host", is: hostRef)
                    .filter { $0.bool("currently_attached") && networks.contains($0.string("network")) }
                    .flatMap { pif -> [String] in
                        let v4 = pif.string("IP")
                        return (v4.isEmpty ? [] : [v4]) + pif.strings("IPv6").filter { !$0.isEmpty }
                    }
                return addresses.map { address in
                    .struct([
                        XMLRPCMember("exportname", .string(exportName)), XMLRPCMember("address", .string(address)),
                        XMLRPCMember("port", .string(port)), XMLRPCMember("cert", .string(cert)),
                        XMLRPCMember("subject", .string(host.string("hostname"))),
                    ])
                }
            }
        }
        return .array(records)
    }

    /// Whether NBD clients must use TLS: yes (FORCEDTLS) unless every NBD-enabled network is
    /// marked `insecure_nbd` (NOTLS), as xapi decides.
    var nbdRequiresTLS: Bool {
        db.read { v in
            let purposes = v.all("network").map { Set($0.strings("purpose")) }
            return !(purposes.contains { $0.contains("insecure_nbd") } && !purposes.contains { $0.contains("nbd") })
        }
    }

    /// `host.get_server_certificate`: the host's TLS certificate (PEM, without its key).
    func hostServerCertificate(_ c: APICall) throws -> XMLRPCValue {
        try c.arity(1)
        let host = try c.string(0, "host")
        let record = try db.read { v in try v.get("host", host) }
        if host == hostRef { return .string(try serverCertificatePEM()) }
        guard !record.string("server_certificate").isEmpty else { throw APIFailure("HOST_OFFLINE", host) }
        return .string(record.string("server_certificate"))
    }

    /// Publishes (or, with nil, withdraws) this host's NBD server on its record: its port in
    /// `other_config:nbd_port`, its certificate in `server_certificate`.
    func publishNBD(port: Int?) {
        let cert = (try? serverCertificatePEM()) ?? ""
        _ = try? db.write { txn in
            try txn.update("host", hostRef) { h in
                var other = h.map("other_config")
                other["nbd_port"] = port.map(String.init)
                h.setMap("other_config", other)
                h.fields["server_certificate"] = .string(cert)
            }
        }
    }

    /// The certificate blocks of the daemon's PEM file (the key stays out).
    func serverCertificatePEM() throws -> String {
        let text = try String(contentsOfFile: try ServerCertificate.ensure(configuration), encoding: .utf8)
        var out: [String] = []
        var inside = false
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("-----BEGIN CERTIFICATE-----") { inside = true }
            if inside { out.append(String(line)) }
            if line.hasPrefix("-----END CERTIFICATE-----") { inside = false }
        }
        guard !out.isEmpty else { throw APIFailure.internalError("no certificate in the host's PEM file") }
        return out.joined(separator: "\n") + "\n"
    }

    /// The datapath behind an NBD export name: checks the session it carries and finds the VDI's
    /// attachment on this host, or attaches it (a VBD on the control domain, read-only for
    /// snapshots and read-only VDIs) until `NBDExport.release` is called.
    public func nbdExport(named name: String) throws(NBDExportRefusal) -> NBDExport {
        guard let parsed = NBDExportName(name) else { throw .unknown("not an export of this server") }
        let session: ObjectRecord? = db.read { $0.find("session", parsed.session) }
        guard session != nil else { throw .policy("the session is not valid") }
        guard let vdi = db.read({ try? $0.byUUID("VDI", parsed.vdiUUID) }) else { throw .unknown("no such VDI") }
        nbdLock.lock()
        defer { nbdLock.unlock() }
        // Another connection's attachment: shared, released by the last one.
        if let shared = nbdAttachments[vdi.ref], var export = attachedExport(vdi.ref) {
            nbdAttachments[vdi.ref] = (shared.vbd, shared.users + 1)
            export.release = { [self] in releaseNBD(vdi.ref) }
            return export
        }
        if let existing = attachedExport(vdi.ref) { return existing }
        // As xapi-nbd does: plug a VBD on the control domain for the connection.
        let readOnly = vdi.bool("read_only") || vdi.bool("is_a_snapshot")
        do {
            let dom0 = try db.read { v in
                guard let vm = v.all("VM").first(where: { $0.bool("is_control_domain") && $0.string("resident_on") == hostRef }) else {
                    throw APIFailure.internalError("no control domain")
                }
                return vm.ref
            }
            var vbd = ObjectRecord(DataModel.vbd, [
                "VM": .string(dom0), "VDI": .string(vdi.ref), "mode": .string(readOnly ? "RO" : "RW"),
                "type": .string("Disk"), "unpluggable": .boolean(true),
                "other_config": .struct([XMLRPCMember("owner", "nbd")]),
            ])
            try db.write { txn in
                let used = Set(txn.whereField("VBD", "VM", is: dom0).map { $0.string("userdevice") })
                // Above the devices people pick, so that a VBD still being released after its
                // connection ended does not hold a number someone asks for next.
                vbd.fields["userdevice"] = .string(String((100...).first { !used.contains(String($0)) }!))
                txn.put(vbd)
            }
            let call = APICall(method: "VBD.plug", session: parsed.session, args: [.string(vbd.ref)])
            do { _ = try vbdPlug(call, plug: true) } catch {
                _ = try? db.write { txn in txn.delete("VBD", vbd.ref) }
                throw error
            }
            guard var export = attachedExport(vdi.ref) else { throw APIFailure.internalError("the attach gave no NBD address") }
            nbdAttachments[vdi.ref] = (vbd.ref, 1)
            export.release = { [self] in releaseNBD(vdi.ref) }
            return export
        } catch let f as APIFailure {
            throw .unavailable(f.code)
        } catch {
            throw .unavailable("\(error)")
        }
    }

    /// One NBD connection using the VBD plugged for `vdi` ended: the last one unplugs and destroys it.
    private func releaseNBD(_ vdi: String) {
        nbdLock.lock()
        defer { nbdLock.unlock() }
        guard let entry = nbdAttachments[vdi] else { return }
        if entry.users > 1 {
            nbdAttachments[vdi] = (entry.vbd, entry.users - 1)
            return
        }
        nbdAttachments[vdi] = nil
        let unplug = APICall(method: "VBD.unplug", session: "", args: [.string(entry.vbd)])
        if (try? vbdPlug(unplug, plug: false)) == nil { log.warning("NBD: unplugging \(entry.vbd) failed") }
        _ = try? db.write { txn in if txn.find("VBD", entry.vbd) != nil { txn.delete("VBD", entry.vbd) } }
    }

    /// The NBD address of `vdi`'s attachment on this host (from a plugged VBD), if any.
    private func attachedExport(_ vdi: String) -> NBDExport? {
        db.read { v in
            for vbd in v.whereField("VBD", "VDI", is: vdi) where vbd.bool("currently_attached") {
                // Plugged here when its datapath socket is on this host.
                guard let address = vbd.map("runtime_properties")["params_nbd"], let export = NBDExport(paramsNBD: address),
                      FileManager.default.fileExists(atPath: export.socketPath) else { continue }
                return export
            }
            return nil
        }
    }
}
