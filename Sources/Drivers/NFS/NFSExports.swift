import CNFS
import Foundation

/// The exports list `sr_probe` prints without a `serverpath`, as the Python SM prints it:
/// `<nfs-exports><Export><Target/><Path/><Accesslist/></Export>…</nfs-exports>`, from the
/// MOUNT protocol's EXPORT call (on `mountport=` when the options name it, else through the
/// portmapper).
enum NFSExports {
    /// The document for `server` (no `<Export>` when the server does not answer in time).
    static func document(server: String, mountPort: Int?, timeout: Double) -> String {
        var out = "<?xml version=\"1.0\" ?>\n<nfs-exports>\n"
        for (path, groups) in list(server: server, mountPort: mountPort, timeout: timeout) {
            out += "\t<Export>\n\t\t<Target>\(escape(server))</Target>\n\t\t<Path>\(escape(path))</Path>\n"
            out += "\t\t<Accesslist>\(escape(groups.isEmpty ? "*" : groups.joined(separator: ",")))</Accesslist>\n\t</Export>\n"
        }
        return out + "</nfs-exports>\n"
    }

    /// The exported paths and their access groups.
    static func list(server: String, mountPort: Int?, timeout: Double) -> [(String, [String])] {
        guard let port = mountPort else { return copy(mount_getexports(server), free: true) }
        guard let rpc = rpc_init_context() else { return [] }
        defer { rpc_destroy_context(rpc) }
        let call = ExportsCall()
        let box = Unmanaged.passRetained(call)
        defer { box.release() }
        guard rpc_connect_async(rpc, server, Int32(port), connected, box.toOpaque()) == 0 else { return [] }
        let deadline = Date().addingTimeInterval(timeout)
        while !call.done && Date() < deadline {
            var p = pollfd(fd: rpc_get_fd(rpc), events: Int16(truncatingIfNeeded: rpc_which_events(rpc)), revents: 0)
            guard poll(&p, 1, 100) >= 0 || errno == EINTR else { break }
            if rpc_service(rpc, Int32(p.revents)) < 0 { break }
        }
        return call.exports
    }

    /// What the asynchronous calls leave.
    final class ExportsCall {
        var done = false
        var exports: [(String, [String])] = []
    }

    /// Connected (or not): asks for the exports.
    private static let connected: rpc_cb = { rpc, status, _, data in
        let call = Unmanaged<ExportsCall>.fromOpaque(data!).takeUnretainedValue()
        guard status == 0, rpc_mount3_export_async(rpc, answered, data) == 0 else { call.done = true; return }
    }

    /// The EXPORT reply: copied out before libnfs frees it.
    private static let answered: rpc_cb = { _, status, result, data in
        let call = Unmanaged<ExportsCall>.fromOpaque(data!).takeUnretainedValue()
        if status == 0, let result {
            call.exports = copy(result.assumingMemoryBound(to: exports?.self).pointee, free: false)
        }
        call.done = true
    }

    /// The entries of an export list (freed when `free`).
    static func copy(_ list: exports?, free: Bool) -> [(String, [String])] {
        var out: [(String, [String])] = []
        var node = list
        while let e = node {
            var groups: [String] = []
            var g = e.pointee.ex_groups
            while let group = g {
                groups.append(String(cString: group.pointee.gr_name))
                g = group.pointee.gr_next
            }
            out.append((String(cString: e.pointee.ex_dir), groups))
            node = e.pointee.ex_next
        }
        if free, let list { mount_free_export_list(list) }
        return out
    }

    /// XML text escaping.
    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }
}
