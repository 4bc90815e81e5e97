import Foundation

/// The sm_config keys blktap keeps on a VDI's record around its data path (reference §1.9):
/// `host_<host ref>` = `RW`|`RO` while the VDI is active on that host, `activating` while an
/// activation is in progress, `paused` while its data path is paused. An activation waits while
/// another actor has the VDI `paused` or `relinking` (up to `retrySeconds`, then fault 46 "VDI …
/// locked", as blktap's retry loop). Without a session (no toolstack) there is nothing to tag.
struct ActivationTags {
    /// How long an activation waits for `paused`/`relinking` to go away.
    static let retrySeconds = 120.0

    let callbacks: any XenAPICallbacks
    let hostRef: String?
    /// The SR of the call (for the `tapdisk-pause` plugin's arguments).
    let sr: String?

    /// The tags of the call in `c`.
    init(_ c: DriverContext) {
        callbacks = c.callbacks
        hostRef = c.request.hostRef.flatMap { $0.isEmpty ? nil : $0 }
        sr = try? c.srUUID()
    }

    var active: Bool { !(callbacks is NoCallbacks) && hostRef != nil }
    var hostKey: String { "host_" + (hostRef ?? "") }

    /// Marks `vdi` as activating on this host (`activating`, `host_<ref>`), waiting while it is
    /// paused or relinking; `activate` then runs and `activating` is removed whatever happens.
    /// A failed activation takes the host key back.
    func activating(_ vdi: String, writable: Bool, retrySeconds: Double = retrySeconds, _ activate: () throws -> Void) throws {
        guard active else { return try activate() }
        let deadline = Date().addingTimeInterval(retrySeconds)
        while true {
            let sm = try callbacks.smConfig(uuid: vdi)
            if sm["paused"] == nil && sm["relinking"] == nil && sm["activating"] == nil {
                try callbacks.setSMConfig(uuid: vdi, key: "activating", value: "True")
                // A change that marked the VDI `paused` between the look and the mark wins: it
                // looks for `activating` only after marking, so one of the two sees the other.
                if try callbacks.smConfig(uuid: vdi)["paused"] == nil { break }
                try callbacks.setSMConfig(uuid: vdi, key: "activating", value: nil)
            }
            guard Date() < deadline else { throw SMAPIError(.VDIUnavailable, opterr: "VDI \(vdi) locked") }
            usleep(250_000)
        }
        defer { try? callbacks.setSMConfig(uuid: vdi, key: "activating", value: nil) }
        try callbacks.setSMConfig(uuid: vdi, key: hostKey, value: writable ? "RW" : "RO")
        do { try activate() } catch {
            try? callbacks.setSMConfig(uuid: vdi, key: hostKey, value: nil)
            throw error
        }
    }

    /// Removes this host's key from `vdi` (its last activation here ended).
    func deactivated(_ vdi: String) throws {
        guard active else { return }
        try callbacks.setSMConfig(uuid: vdi, key: hostKey, value: nil)
    }

    /// Runs `body` with `paused=true` on `vdi`'s record, whether or not the VDI is active on
    /// this host (blktap's `tap_pause`), so that no host activates it halfway through a change
    /// of its chain. An activation already under way (`activating`) is waited for. On every
    /// other host where the VDI is active (`host_<ref>`), its data path is paused through the
    /// `tapdisk-pause` plugin (`host.call_plugin`) for the length of `body` and unpaused after
    /// it onto the chain as it is then; a host that cannot be paused fails the call with 46
    /// before anything changes.
    func paused<T>(_ vdi: String, retrySeconds: Double = retrySeconds, _ body: () throws -> T) throws -> T {
        guard active else { return try body() }
        try callbacks.setSMConfig(uuid: vdi, key: "paused", value: "true")
        defer { try? callbacks.setSMConfig(uuid: vdi, key: "paused", value: nil) }
        let deadline = Date().addingTimeInterval(retrySeconds)
        var sm = try callbacks.smConfig(uuid: vdi)
        while sm["activating"] != nil {
            guard Date() < deadline else { throw SMAPIError(.VDIUnavailable, opterr: "VDI \(vdi) locked: an activation does not end") }
            usleep(250_000)
            sm = try callbacks.smConfig(uuid: vdi)
        }
        let elsewhere = sm.keys.filter { $0.hasPrefix("host_") && $0 != hostKey }.sorted().map { String($0.dropFirst(5)) }
        var pausedHosts: [String] = []
        // Unpauses every host paused so far (last first); what failed, host by host.
        func unpauseAll() -> [String] {
            var failures: [String] = []
            while let host = pausedHosts.popLast() {
                do { try plugin("unpause", vdi, on: host) } catch { failures.append("\(host): \(error)") }
            }
            return failures
        }
        let result: T
        do {
            for host in elsewhere {
                do { try plugin("pause", vdi, on: host) } catch {
                    throw SMAPIError(.VDIUnavailable, opterr: "VDI \(vdi) is active on \(host), whose data path could not be paused: \(error)")
                }
                pausedHosts.append(host)
            }
            result = try body()
        } catch {
            _ = unpauseAll()
            throw error
        }
        // A host that cannot be unpaused fails the call, as blktap's tap_unpause does.
        let failures = unpauseAll()
        guard failures.isEmpty else {
            throw SMAPIError(.VDIUnavailable, opterr: "VDI \(vdi): unpausing its data path failed on \(failures.joined(separator: "; "))")
        }
        return result
    }

    /// Calls `function` of the `tapdisk-pause` plugin for `vdi` on `host`; it must answer "True".
    private func plugin(_ function: String, _ vdi: String, on host: String) throws {
        var arguments = ["vdi_uuid": vdi]
        arguments["sr_uuid"] = sr
        if function == "pause" { arguments["failfast"] = "False" }
        let answer = try callbacks.callPlugin(host: host, plugin: TapdiskPausePlugin.name, function: function, arguments: arguments)
        guard answer == "True" else { throw SMAPIError(.VDIUnavailable, opterr: "\(TapdiskPausePlugin.name) \(function) answered \(answer)") }
    }

    /// At `sr_attach` (blktap's `reset_sr`): this host's keys and stale `paused` keys go from the
    /// VDIs not active here. Returns the VDIs changed.
    @discardableResult
    func reset(activeHere: (String) -> Bool) throws -> [String] {
        guard active else { return [] }
        var changed: [String] = []
        for (vdi, sm) in try callbacks.srSMConfigs().sorted(by: { $0.key < $1.key }) where !activeHere(vdi) {
            let stale = [hostKey, "paused", "activating"].filter { sm[$0] != nil }
            for key in stale { try callbacks.setSMConfig(uuid: vdi, key: key, value: nil) }
            if !stale.isEmpty { changed.append(vdi) }
        }
        return changed
    }
}
