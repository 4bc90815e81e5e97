import Foundation
import CNFS

/// The exports list `sr_probe` prints without a `serverpath`, as the Python SM prints it:
/// `<nfs-exports><Export><Target/><Path/><Accesslist/></Export>…</nfs-exports>`.
enum NFSExports {
    /// The document for `server` (MOUNT's EXPORT call through the portmapper; empty when the
    /// server does not answer it).
    static func document(server: String) -> String {
        var out = "<?xml version=\"1.0\" ?>\n<nfs-exports>\n"
        if let list = mount_getexports(server) {
            defer { mount_free_export_list(list) }
            var node: UnsafeMutablePointer<exportnode>? = list
            while let e = node {
                var groups: [String] = []
                var g = e.pointee.ex_groups
                while let group = g {
                    groups.append(String(cString: group.pointee.gr_name))
                    g = group.pointee.gr_next
                }
                out += "\t<Export>\n\t\t<Target>\(escape(server))</Target>\n\t\t<Path>\(escape(String(cString: e.pointee.ex_dir)))</Path>\n"
                out += "\t\t<Accesslist>\(escape(groups.isEmpty ? "*" : groups.joined(separator: ",")))</Accesslist>\n\t</Export>\n"
                node = e.pointee.ex_next
            }
        }
        return out + "</nfs-exports>\n"
    }

    /// XML text escaping.
    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }
}
