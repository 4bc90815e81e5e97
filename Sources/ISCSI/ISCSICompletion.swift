import CISCSI

/// The state of one libiscsi asynchronous call, on the heap so that libiscsi's callback can
/// write to it whenever it runs (at completion, or when the context is destroyed and the call
/// is cancelled), after the Swift code that started it has given up waiting.
final class ISCSICompletion {
    /// Whether the callback has run.
    var done = false
    /// The status libiscsi reported (`SCSI_STATUS_*`).
    var status: Int32 = 0
    /// The SCSI task, as its `*_task` call returned it (owned: freed by `release()`).
    var task: UnsafeMutablePointer<scsi_task>?
    /// The targets and portals a SendTargets discovery returned (copied in the callback).
    var discovered: [ISCSIDiscoveredTarget] = []
    /// The iovec a READ's data lands in (owned).
    var iovec: UnsafeMutablePointer<scsi_iovec>?

    /// The opaque pointer passed as libiscsi's `private_data` (valid while `self` lives).
    var opaque: UnsafeMutableRawPointer { Unmanaged.passUnretained(self).toOpaque() }

    /// Frees the task and the iovec.
    func release() {
        if let task { scsi_free_scsi_task(task) }
        task = nil
        iovec?.deallocate()
        iovec = nil
    }

    deinit { release() }

    /// The callback for SCSI tasks and plain commands (login, connect).
    static var callback: iscsi_command_cb {
        { _, status, _, privateData in
            guard let privateData else { return }
            let c = Unmanaged<ISCSICompletion>.fromOpaque(privateData).takeUnretainedValue()
            c.status = status
            c.done = true
        }
    }

    /// The callback for SendTargets discovery: copies the list while it is valid.
    static var discoveryCallback: iscsi_command_cb { { _, status, data, privateData in
        guard let privateData else { return }
        let c = Unmanaged<ISCSICompletion>.fromOpaque(privateData).takeUnretainedValue()
        c.status = status
        c.done = true
        guard status == 0, let data else { return }
        var entry: UnsafeMutablePointer<iscsi_discovery_address>? = data.assumingMemoryBound(to: iscsi_discovery_address.self)
        var out: [ISCSIDiscoveredTarget] = []
        while let e = entry {
            let name = e.pointee.target_name.map { String(cString: $0) } ?? ""
            var portals: [String] = []
            var p = e.pointee.portals
            while let portal = p {
                if let s = portal.pointee.portal { portals.append(String(cString: s)) }
                p = portal.pointee.next
            }
            out.append(ISCSIDiscoveredTarget(iqn: name, portals: portals))
            entry = e.pointee.next
        }
        c.discovered = out
    } }
}
