import Foundation
import XenAPIWire
#if canImport(Glibc)
import Glibc
#endif

/// Runs one `xe` command over a XenAPI connection and returns what it prints.
public final class XeRunner: @unchecked Sendable {
    private let api: XenAPIConnection
    private let showProgress: Bool

    /// A runner over a logged-in connection; `showProgress` prints a progress line for long tasks on stderr.
    public init(api: XenAPIConnection, showProgress: Bool = false) {
        self.api = api
        self.showProgress = showProgress
    }

    /// The default `xe <class>-list` columns.
    static let listColumns: [String: [String]] = [
        "VDI": ["uuid", "name-label", "name-description", "virtual-size", "read-only", "sharable", "sr-uuid"],
        "SR": ["uuid", "name-label", "name-description", "type", "content-type"],
        "pool": ["uuid", "name-label", "name-description", "master-uuid", "default-sr-uuid"],
        "VM": ["uuid", "name-label", "power-state"],
        "PBD": ["uuid", "host-uuid", "sr-uuid", "device-config", "currently-attached"],
        "VBD": ["uuid", "vm-uuid", "vdi-uuid", "device", "empty"],
        "host": ["uuid", "name-label", "name-description"],
        "SM": ["uuid", "type", "vendor", "name-label", "required-api-version"],
        "task": ["uuid", "name-label", "name-description", "status", "progress"],
        "network": ["uuid", "name-label", "name-description", "bridge"],
    ]

    /// xe's class prefixes.
    static let classes: [String: String] = [
        "vdi": "VDI", "sr": "SR", "pool": "pool", "vm": "VM", "pbd": "PBD", "vbd": "VBD", "host": "host",
        "sm": "SM", "task": "task", "network": "network", "pif": "PIF", "vif": "VIF", "message": "message", "secret": "secret",
    ]

    /// The storage commands with a line of help each (the generated `<class>-list`/`-param-*` come on top).
    public static let help: [(String, String)] = [
        ("sr-create", "name-label= type= [device-config:k=v] [shared=] [physical-size=] [content-type=] [host-uuid=] [sm-config:k=v]: create an SR, print its uuid"),
        ("sr-introduce", "name-label= type= uuid= [shared=] [content-type=]: make a record for an existing SR"),
        ("sr-probe", "type= [device-config:k=v] [sm-config:k=v]: probe for SRs (XML)"),
        ("sr-scan", "uuid=: rescan the SR's VDIs"), ("sr-update", "uuid=: refresh the SR's sizes"),
        ("sr-destroy", "uuid=: destroy the SR and its contents (PBDs unplugged)"), ("sr-forget", "uuid=: forget the SR's records"),
        ("pbd-create", "host-uuid= sr-uuid= [device-config:k=v]: print the new PBD's uuid"),
        ("pbd-plug", "uuid=: attach the SR on the host"), ("pbd-unplug", "uuid=: detach the SR"), ("pbd-destroy", "uuid="),
        ("vdi-create", "sr-uuid= name-label= virtual-size= [type=] [sharable=] [read-only=] [sm-config:k=v]: print the new VDI's uuid"),
        ("vdi-introduce", "uuid= sr-uuid= location= [name-label=] [type=] [sm-config:k=v]: record a volume the SR holds"),
        ("vdi-destroy", "uuid="), ("vdi-forget", "uuid="), ("vdi-update", "uuid="),
        ("vdi-snapshot", "uuid= [driver-params-k=v]: print the snapshot's uuid"),
        ("vdi-clone", "uuid= [new-name-label=] [new-name-description=] [driver-params-k=v]: print the clone's uuid"),
        ("vdi-resize", "uuid= disk-size= [online=true]"),
        ("vdi-export", "uuid= filename= [format=raw|vhd] [base=<vdi uuid>] [progress=true]: write the VDI's contents to a file"),
        ("vdi-import", "uuid= filename= [format=raw|vhd] [progress=true]: write a file's disk into the VDI"),
        ("vdi-copy", "uuid= sr-uuid= [base-vdi-uuid=] [into-vdi-uuid=]: print the copy's uuid"),
        ("vdi-pool-migrate", "uuid= sr-uuid=: move a VDI plugged through a VBD to another SR without unplugging it; print its new uuid"),
        ("vbd-create", "vm-uuid= device= vdi-uuid= [bootable=] [type=] [mode=] [unpluggable=]: print the new VBD's uuid"),
        ("vbd-plug", "uuid=: attach and activate the VDI"), ("vbd-unplug", "uuid=: deactivate and detach"), ("vbd-destroy", "uuid="),
        ("sm-list", "[params=]: the storage drivers"), ("task-list", "[params=]"), ("task-cancel", "uuid="),
        ("host-list", "[params=]"), ("pool-list", "[params=]"),
        ("<class>-list", "[field=value …] [params=a,b|all] [--minimal]"), ("<class>-param-list", "uuid="),
        ("<class>-param-get", "uuid= param-name= [param-key=]"), ("<class>-param-set", "uuid= field=value … map:key=value …"),
        ("help", "[command]"),
    ]

    /// Runs `inv`; the text for stdout.
    public func run(_ inv: XeInvocation) throws(XeError) -> String {
        do {
            return try dispatch(inv)
        } catch let e as XeError {
            throw e
        } catch let f as APIFailure {
            throw XeError(f)
        } catch {
            throw XeError("\(error)")
        }
    }

    private func dispatch(_ inv: XeInvocation) throws -> String {
        let p = inv.params
        switch inv.command {
        case "help":
            if let name = p.keys.first, let line = Self.help.first(where: { $0.0 == name }) { return "\(line.0): \(line.1)\n" }
            return "Usage: xe <command> [-s server] [-p port] [-u user] [-pw password] [key=value …]\n\nCommands:\n"
                + Self.help.map { "  \($0.0) \($0.1)" }.joined(separator: "\n") + "\n"
        case "sr-create":
            let host = try p["host-uuid"].map { try ref("host", $0) } ?? (try api.call("session.get_this_host", [.string(api.session ?? "")]).stringValue ?? "")
            let sr = try async("SR.create", [
                .string(host), map(inv, "device-config"), .string(String(try size(p["physical-size"] ?? "0"))),
                .string(try inv.require("name-label")), .string(p["name-description"] ?? ""), .string(try inv.require("type")),
                .string(p["content-type"] ?? "user"), .boolean(p["shared"] == "true"), map(inv, "sm-config"),
            ])
            return try uuid("SR", sr) + "\n"
        case "sr-introduce":
            let sr = try api.call("SR.introduce", [
                .string(try inv.require("uuid")), .string(try inv.require("name-label")), .string(p["name-description"] ?? ""),
                .string(try inv.require("type")), .string(p["content-type"] ?? "user"), .boolean(p["shared"] == "true"),
                map(inv, "sm-config"),
            ])
            return try uuid("SR", sr) + "\n"
        case "sr-probe":
            let host = try api.call("session.get_this_host", [.string(api.session ?? "")]).stringValue ?? ""
            let out = try async("SR.probe", [.string(host), map(inv, "device-config"), .string(try inv.require("type")), map(inv, "sm-config")])
            return (out.stringValue ?? "") + "\n"
        case "sr-scan", "sr-update", "sr-destroy", "sr-forget":
            let verb = String(inv.command.dropFirst(3))
            return try each("SR", inv) { sr in _ = try async("SR.\(verb)", [.string(sr)]); return "" }
        case "pbd-create":
            let pbd = try api.call("PBD.create", [.struct([
                XMLRPCMember("host", .string(try ref("host", try inv.require("host-uuid")))),
                XMLRPCMember("SR", .string(try ref("SR", try inv.require("sr-uuid")))),
                XMLRPCMember("device_config", map(inv, "device-config")), XMLRPCMember("other_config", .struct([])),
            ])])
            return try uuid("PBD", pbd) + "\n"
        case "pbd-plug", "pbd-unplug", "pbd-destroy":
            return try each("PBD", inv) { pbd in _ = try async("PBD.\(inv.command.dropFirst(4))", [.string(pbd)]); return "" }
        case "vdi-create":
            let vdi = try async("VDI.create", [.struct([
                XMLRPCMember("SR", .string(try ref("SR", try inv.require("sr-uuid")))),
                XMLRPCMember("name_label", .string(try inv.require("name-label"))),
                XMLRPCMember("name_description", .string(p["name-description"] ?? "")),
                XMLRPCMember("virtual_size", .string(String(try size(try inv.require("virtual-size"))))),
                XMLRPCMember("type", .string(p["type"] ?? "user")), XMLRPCMember("sharable", .boolean(p["sharable"] == "true")),
                XMLRPCMember("read_only", .boolean(p["read-only"] == "true")), XMLRPCMember("other_config", map(inv, "other-config")),
                XMLRPCMember("sm_config", map(inv, "sm-config")), XMLRPCMember("xenstore_data", .struct([])),
                XMLRPCMember("tags", .array([])),
            ])])
            return try uuid("VDI", vdi) + "\n"
        case "vdi-introduce":
            let vdi = try async("VDI.introduce", [
                .string(try inv.require("uuid")), .string(p["name-label"] ?? ""), .string(p["name-description"] ?? ""),
                .string(try ref("SR", try inv.require("sr-uuid"))), .string(p["type"] ?? "user"), .boolean(p["sharable"] == "true"),
                .boolean(p["read-only"] == "true"), .struct([]), .string(try inv.require("location")), .struct([]),
                map(inv, "sm-config"), .boolean(p["managed"] != "false"),
            ])
            return try uuid("VDI", vdi) + "\n"
        case "vdi-destroy", "vdi-forget", "vdi-update":
            return try each("VDI", inv) { vdi in _ = try async("VDI.\(inv.command.dropFirst(4))", [.string(vdi)]); return "" }
        case "vdi-snapshot", "vdi-clone":
            let verb = String(inv.command.dropFirst(4))
            return try each("VDI", inv) { vdi in
                let new = try async("VDI.\(verb)", [.string(vdi), map(inv, "driver-params")])
                if let label = p["new-name-label"] { _ = try api.call("VDI.set_name_label", [new, .string(label)]) }
                if let d = p["new-name-description"] { _ = try api.call("VDI.set_name_description", [new, .string(d)]) }
                return try uuid("VDI", new) + "\n"
            }
        case "vdi-copy":
            let into = try p["into-vdi-uuid"].map { try ref("VDI", $0) } ?? ObjectRef.null
            let base = try p["base-vdi-uuid"].map { try ref("VDI", $0) } ?? ObjectRef.null
            var sr = ObjectRef.null
            if let given = p["sr-uuid"] { sr = try ref("SR", given) } else if into == ObjectRef.null { _ = try inv.require("sr-uuid") }
            return try each("VDI", inv) { vdi in
                try uuid("VDI", try async("VDI.copy", [.string(vdi), .string(sr), .string(base), .string(into)])) + "\n"
            }
        case "vdi-pool-migrate":
            let sr = try ref("SR", try inv.require("sr-uuid"))
            return try each("VDI", inv) { vdi in
                try uuid("VDI", try async("VDI.pool_migrate", [.string(vdi), .string(sr), .struct([])])) + "\n"
            }
        case "vdi-export", "vdi-import":
            return try transfer(inv, export: inv.command == "vdi-export")
        case "vdi-resize":
            let online = p["online"] == "true"
            let newSize = String(try size(try inv.require("disk-size")))
            return try each("VDI", inv) { vdi in
                _ = try async(online ? "VDI.resize_online" : "VDI.resize", [.string(vdi), .string(newSize)])
                return ""
            }
        case "vbd-create":
            let vbd = try api.call("VBD.create", [.struct([
                XMLRPCMember("VM", .string(try ref("VM", try inv.require("vm-uuid")))),
                XMLRPCMember("VDI", .string(try p["vdi-uuid"].map { try ref("VDI", $0) } ?? ObjectRef.null)),
                XMLRPCMember("userdevice", .string(try inv.require("device"))), XMLRPCMember("bootable", .boolean(p["bootable"] == "true")),
                XMLRPCMember("mode", .string(p["mode"] ?? "RW")), XMLRPCMember("type", .string(p["type"] ?? "Disk")),
                XMLRPCMember("unpluggable", .boolean(p["unpluggable"] != "false")), XMLRPCMember("empty", .boolean(p["vdi-uuid"] == nil)),
                XMLRPCMember("other_config", .struct([])), XMLRPCMember("qos_algorithm_type", ""), XMLRPCMember("qos_algorithm_params", .struct([])),
            ])])
            return try uuid("VBD", vbd) + "\n"
        case "vbd-plug", "vbd-unplug", "vbd-destroy":
            return try each("VBD", inv) { vbd in _ = try async("VBD.\(inv.command.dropFirst(4))", [.string(vbd)]); return "" }
        case "task-cancel":
            return try each("task", inv) { task in _ = try api.call("task.cancel", [.string(task)]); return "" }
        default:
            return try generic(inv)
        }
    }

    // MARK: - Generated commands

    private func generic(_ inv: XeInvocation) throws -> String {
        let parts = inv.command.split(separator: "-", maxSplits: 1).map(String.init)
        guard parts.count == 2, let cls = Self.classes[parts[0]], let spec = DataModel.spec(cls) else {
            throw XeError("Unknown command: \(inv.command)\nFor help, type 'xe help'.")
        }
        let formatter = XeRecordFormatter { [api] ref in
            for c in ["host", "SR", "VDI", "VM", "PBD", "VBD", "pool", "task", "network"] {
                if let u = try? api.call("\(c).get_uuid", [.string(ref)]).stringValue { return u }
            }
            return "<not in database>"
        }
        switch parts[1] {
        case "list":
            let records = try api.call("\(spec.name).get_all_records").structMembers ?? []
            let filters = inv.params.filter { !["params", "minimal", "multiple", "all", "nossl"].contains($0.key) }
            var chosen: [[XeRecordFormatter.Field]] = []
            for r in records.sorted(by: { ($0.value[member: "uuid"]?.stringValue ?? "") < ($1.value[member: "uuid"]?.stringValue ?? "") }) {
                let fields = formatter.fields(spec, r.value)
                let byName = Dictionary(fields.map { ($0.name, $0.value) }) { a, _ in a }
                if filters.allSatisfy({ byName[$0.key] == $0.value }) { chosen.append(fields) }
            }
            let wanted: [String]? = inv.params["params"] == "all" ? nil
                : inv.params["params"].map { $0.split(separator: ",").map(String.init) } ?? Self.listColumns[spec.name] ?? ["uuid"]
            let shown = chosen.map { fields in wanted.map { w in w.compactMap { name in fields.first { $0.name == name } } } ?? fields }
            if inv.minimal {
                return shown.compactMap { $0.first?.value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: ",", with: "\\,") }
                    .joined(separator: ",") + "\n"
            }
            return shown.map { XeRecordFormatter.lines($0).joined(separator: "\n") + "\n\n" }.joined()
        case "param-list":
            let r = try api.call("\(spec.name).get_record", [.string(try selected(spec.name, inv))])
            return XeRecordFormatter.lines(formatter.fields(spec, r)).joined(separator: "\n") + "\n"
        case "param-get":
            let r = try api.call("\(spec.name).get_record", [.string(try selected(spec.name, inv))])
            let name = try inv.require("param-name")
            guard let field = formatter.fields(spec, r).first(where: { $0.name == name }),
                  let f = spec.fields.first(where: { XeRecordFormatter.xeName($0) == name }) else {
                throw XeError("Error code: UNKNOWN_PARAMETER\nError parameters: \(name)")
            }
            if let key = inv.params["param-key"] {
                guard let v = r[member: f.name]?[member: key]?.stringValue else { throw XeError("Key \(key) not found in map") }
                return v + "\n"
            }
            return field.value + "\n"
        case "param-set":
            let ref = try selected(spec.name, inv)
            for (name, value) in inv.params where name != "uuid" {
                guard let f = spec.fields.first(where: { XeRecordFormatter.xeName($0) == name }), f.access == .readWrite else {
                    throw XeError("Error code: FIELD_NOT_SETTABLE\nError parameters: \(name)")
                }
                let v: XMLRPCValue
                switch f.kind {
                case .bool: v = .boolean(value == "true")
                case .int: v = .string(String(try size(value)))
                default: v = .string(value)
                }
                _ = try api.call("\(spec.name).set_\(f.name)", [.string(ref), v])
            }
            for (prefix, entries) in inv.maps {
                guard let f = spec.fields.first(where: { XeRecordFormatter.xeName($0) == prefix && $0.kind == .map }), f.access == .readWrite else {
                    throw XeError("Error code: FIELD_NOT_SETTABLE\nError parameters: \(prefix)")
                }
                for (k, v) in entries {
                    _ = try api.call("\(spec.name).remove_from_\(f.name)", [.string(ref), .string(k)])
                    _ = try api.call("\(spec.name).add_to_\(f.name)", [.string(ref), .string(k), .string(v)])
                }
            }
            return ""
        default:
            throw XeError("Unknown command: \(inv.command)\nFor help, type 'xe help'.")
        }
    }

    // MARK: - Helpers

    private func map(_ inv: XeInvocation, _ prefix: String) -> XMLRPCValue {
        let m = inv.maps[prefix] ?? [:]
        return .struct(m.keys.sorted().map { XMLRPCMember($0, .string(m[$0]!)) })
    }

    private func ref(_ cls: String, _ uuid: String) throws -> String {
        try api.call("\(cls).get_by_uuid", [.string(uuid)]).stringValue ?? ""
    }

    private func uuid(_ cls: String, _ ref: XMLRPCValue) throws -> String {
        try api.call("\(cls).get_uuid", [ref]).stringValue ?? ""
    }

    /// Parameters of the object commands that are not selectors.
    static let commandParameters: Set<String> = [
        "uuid", "multiple", "minimal", "force", "nossl", "all", "params", "new-name-label", "new-name-description",
        "disk-size", "online", "param-name", "param-key",
    ]

    /// The object named by `uuid=` or by the class selector (`vdi=<uuid or name-label>`).
    private func selected(_ cls: String, _ inv: XeInvocation) throws -> String {
        let refs = try selection(cls, inv)
        guard refs.count == 1 else { throw XeError("Multiple matches \(cls)s found. --multiple required to proceed") }
        return refs[0]
    }

    /// The objects a command applies to, as xe selects them: `uuid=`, the class selector
    /// (`vdi=<uuid or name-label>`), or field filters (`sr-uuid=… name-label=…`, every object
    /// with `--multiple` and no filter). More than one needs `--multiple`.
    private func selection(_ cls: String, _ inv: XeInvocation) throws -> [String] {
        let multiple = inv.params["multiple"] == "true"
        if let u = inv.params["uuid"] { return [try ref(cls, u)] }
        var refs: [String]
        if let name = inv.params[cls.lowercased()] {
            if let r = try? ref(cls, name) { return [r] }
            refs = (try api.call("\(cls).get_by_name_label", [.string(name)]).arrayValue ?? []).compactMap(\.stringValue)
        } else {
            let filters = inv.params.filter { !Self.commandParameters.contains($0.key) }
            guard !filters.isEmpty || multiple, let spec = DataModel.spec(cls) else { throw XeError("Required parameter not found: uuid") }
            let formatter = XeRecordFormatter { [api] ref in
                for c in ["host", "SR", "VDI", "VM", "PBD", "VBD", "pool", "task", "network"] {
                    if let u = try? api.call("\(c).get_uuid", [.string(ref)]).stringValue { return u }
                }
                return "<not in database>"
            }
            let records = try api.call("\(spec.name).get_all_records").structMembers ?? []
            let names = Set(spec.fields.map(XeRecordFormatter.xeName))
            if let unknown = filters.keys.sorted().first(where: { !names.contains($0) }) {
                throw XeError("Unknown field '\(unknown)'")
            }
            refs = records.filter { r in
                let byName = Dictionary(formatter.fields(spec, r.value).map { ($0.name, $0.value) }) { a, _ in a }
                return filters.allSatisfy { byName[$0.key] == $0.value }
            }.map(\.name).sorted()
        }
        if refs.isEmpty { throw XeError("No matching \(cls)s found") }
        if refs.count > 1 && !multiple { throw XeError("Multiple matches \(cls)s found. --multiple required to proceed") }
        return refs
    }

    /// Runs `body` on every selected object; their outputs joined. With several objects, every
    /// one is tried and the failures are reported together (exit status 1).
    private func each(_ cls: String, _ inv: XeInvocation, _ body: (String) throws -> String) throws -> String {
        let refs = try selection(cls, inv)
        if refs.count == 1 { return try body(refs[0]) }
        var out = "", failures: [String] = []
        for r in refs {
            do { out += try body(r) } catch let f as APIFailure {
                failures.append(XeErrorText.message(f))
            } catch let e as XeError {
                failures.append(e.message)
            }
        }
        if !failures.isEmpty {
            var e = XeError("The operation failed on \(failures.count) of \(refs.count) objects:\n" + failures.joined(separator: "\n"))
            e.output = out
            throw e
        }
        return out
    }

    /// A size with xe's suffixes (`10GiB`, `512MiB`, `4KiB`, `1TiB`, plain bytes).
    func size(_ text: String) throws -> Int64 {
        let units: [(String, Int64)] = [("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10),
                                        ("T", 1 << 40), ("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)]
        for (suffix, factor) in units where text.hasSuffix(suffix) {
            guard let n = Int64(text.dropLast(suffix.count)) else { break }
            return n * factor
        }
        guard let n = Int64(text) else { throw XeError("Invalid size: \(text)") }
        return n
    }

    /// Prints a progress line on stderr (`fraction` of 1).
    private func printProgress(_ fraction: Double) {
        let f = max(0, min(1, fraction))
        FileHandle.standardError.write(Data("\r[\(String(repeating: "#", count: Int(f * 40)).padding(toLength: 40, withPad: " ", startingAt: 0))] \(Int(f * 100))%".utf8))
    }

    /// `xe vdi-export` and `xe vdi-import`: the file streamed from or to the server's transfer
    /// handler, with a progress line when asked (`progress=true`) or on a terminal.
    private func transfer(_ inv: XeInvocation, export: Bool) throws -> String {
        let p = inv.params
        let path = try inv.require("filename")
        let vdi = try ref("VDI", try inv.require("uuid"))
        var arguments = ["vdi": vdi, "format": p["format"] ?? "raw"]
        if let base = p["base"] { arguments["base"] = try ref("VDI", base) }
        let show = showProgress || p["progress"] == "true"
        var shown = -1
        let progress: (UInt64, UInt64) -> Void = { [self] done, total in
            let percent = total == 0 ? 100 : Int(done * 100 / total)
            guard show, percent != shown else { return }
            shown = percent
            printProgress(Double(percent) / 100)
        }
        defer { if show { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) } }
        let client = XenAPITransfer(api)
        do {
            if export {
                let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
                guard fd >= 0 else { throw XeError("Cannot create \(path): \(String(cString: strerror(errno)))") }
                defer { close(fd) }
                try client.download(arguments, into: fd, progress: progress)
                guard fsync(fd) == 0 else { throw XeError("Cannot write \(path): \(String(cString: strerror(errno)))") }
            } else {
                let fd = open(path, O_RDONLY | O_CLOEXEC)
                guard fd >= 0 else { throw XeError("Cannot open \(path): \(String(cString: strerror(errno)))") }
                defer { close(fd) }
                var st = stat()
                guard fstat(fd, &st) == 0 else { throw XeError("Cannot read \(path): \(String(cString: strerror(errno)))") }
                try client.upload(arguments, from: fd, length: UInt64(st.st_size), progress: progress)
            }
        } catch let refused as XenAPITransfer.Refused {
            throw refused.failure
        }
        return ""
    }

    /// Runs `method` as an `Async.` call and waits for its task, printing progress when asked.
    private func async(_ method: String, _ params: [XMLRPCValue]) throws -> XMLRPCValue {
        let task = try api.call("Async.\(method)", params)
        defer { _ = try? api.call("task.destroy", [task]) }
        while true {
            let status = try api.call("task.get_status", [task]).stringValue ?? ""
            if status != "pending" && status != "cancelling" {
                if showProgress { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
                if status == "success" {
                    let result = try api.call("task.get_result", [task]).stringValue ?? ""
                    if result.isEmpty { return .string("") }
                    return (try? XMLRPCDecoder().decodeValue(result)) ?? .string(result)
                }
                let info = (try api.call("task.get_error_info", [task]).arrayValue ?? []).compactMap(\.stringValue)
                throw APIFailure(list: info)
            }
            if showProgress { printProgress(try api.call("task.get_progress", [task]).doubleValue ?? 0) }
            usleep(20_000)
        }
    }
}
