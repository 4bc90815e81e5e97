/// One copy of the text metadata: the VG section plus the header keys lvm2 puts after it.
public struct MetadataText: Equatable, Sendable {
    /// The value of `contents` lvm2 requires.
    public static let contents = "Text Format Volume Group"

    /// The VG.
    public var vg: VolumeGroup
    /// What wrote this copy (`description`).
    public var description: String
    /// Host that wrote it.
    public var creationHost: String
    /// When it was written, Unix seconds.
    public var creationTime: Int64

    /// A copy of `vg` with its header fields.
    public init(vg: VolumeGroup, description: String, creationHost: String, creationTime: Int64) {
        self.vg = vg
        self.description = description
        self.creationHost = creationHost
        self.creationTime = creationTime
    }

    // MARK: Reading

    /// Parses and validates a text copy (the bytes before its NUL).
    public static func parse(_ text: [UInt8]) throws -> MetadataText {
        let top = try ConfigParser.parse(text)
        guard top["contents"]?.string == contents else { throw LVMError.invalidMetadata("contents is not \"\(contents)\"") }
        guard top["version"]?.integer == 1 else { throw LVMError.invalidMetadata("version is not 1") }
        guard let vgEntry = top.first(where: { $0.value.section != nil }) else { throw LVMError.invalidMetadata("no VG section") }
        let vg = try parseVG(name: vgEntry.key, vgEntry.value.section!)
        try vg.validate()
        return MetadataText(vg: vg, description: top["description"]?.string ?? "",
                            creationHost: top["creation_host"]?.string ?? "", creationTime: top["creation_time"]?.integer ?? 0)
    }

    /// A typed error naming `what`.
    private static func bad(_ what: String) -> LVMError { .invalidMetadata(what) }

    /// The non-negative integer under `key`.
    private static func uint(_ s: [ConfigEntry], _ key: String, in what: String, default d: UInt64? = nil) throws -> UInt64 {
        guard let v = s[key] else {
            if let d { return d }
            throw bad("\(what): \(key) missing")
        }
        guard let i = v.integer, i >= 0 else { throw bad("\(what): \(key) is not a non-negative integer") }
        return UInt64(i)
    }

    /// The string under `key`.
    private static func str(_ s: [ConfigEntry], _ key: String, in what: String) throws -> String {
        guard let v = s[key]?.string else { throw bad("\(what): \(key) missing or not a string") }
        return v
    }

    /// The array of strings under `key` (empty when absent and optional).
    private static func strings(_ s: [ConfigEntry], _ key: String, in what: String, required: Bool = false) throws -> [String] {
        guard let v = s[key] else {
            if required { throw bad("\(what): \(key) missing") }
            return []
        }
        guard let a = v.array else { throw bad("\(what): \(key) is not an array") }
        return try a.map { guard let t = $0.string else { throw bad("\(what): \(key) holds a non-string") }; return t }
    }

    /// The identifier under `id`.
    private static func uuid(_ s: [ConfigEntry], in what: String) throws -> LVMUUID {
        guard let u = LVMUUID(try str(s, "id", in: what)) else { throw bad("\(what): id is not a valid uuid") }
        return u
    }

    /// Entries whose keys are not in `known`.
    private static func rest(_ s: [ConfigEntry], _ known: Set<String>) -> [ConfigEntry] { s.filter { !known.contains($0.key) } }

    /// The VG section.
    private static func parseVG(name: String, _ s: [ConfigEntry]) throws -> VolumeGroup {
        let what = "VG \(name)"
        guard let pvs = s["physical_volumes"]?.section else { throw bad("\(what): physical_volumes missing") }
        let physical = try pvs.map { e -> PhysicalVolume in
            guard let p = e.value.section else { throw bad("\(what): physical_volumes.\(e.key) is not a section") }
            return try parsePV(key: e.key, p)
        }
        var logical: [LogicalVolume] = []
        if let lvs = s["logical_volumes"] {
            guard let entries = lvs.section else { throw bad("\(what): logical_volumes is not a section") }
            logical = try entries.map { e in
                guard let l = e.value.section else { throw bad("\(what): logical_volumes.\(e.key) is not a section") }
                return try parseLV(name: e.key, l)
            }
        }
        if s["historical_logical_volumes"] != nil { throw LVMError.unsupported("historical_logical_volumes (thin history)") }
        let known: Set<String> = ["id", "seqno", "format", "status", "flags", "tags", "extent_size", "max_lv", "max_pv",
                                  "metadata_copies", "physical_volumes", "logical_volumes"]
        if let f = s["format"]?.string, f != "lvm2" { throw LVMError.unsupported("format \(f)") }
        return VolumeGroup(name: name, id: try uuid(s, in: what), seqno: try uint(s, "seqno", in: what),
                           status: try strings(s, "status", in: what, required: true), flags: try strings(s, "flags", in: what),
                           tags: try strings(s, "tags", in: what), extentSize: try uint(s, "extent_size", in: what),
                           maxLV: try uint(s, "max_lv", in: what, default: 0), maxPV: try uint(s, "max_pv", in: what, default: 0),
                           metadataCopies: try uint(s, "metadata_copies", in: what, default: 0),
                           physicalVolumes: physical, logicalVolumes: logical, extra: rest(s, known))
    }

    /// One `pvN` section.
    private static func parsePV(key: String, _ s: [ConfigEntry]) throws -> PhysicalVolume {
        let what = "PV \(key)"
        let known: Set<String> = ["id", "device", "status", "flags", "tags", "dev_size", "pe_start", "pe_count"]
        return PhysicalVolume(key: key, id: try uuid(s, in: what), device: s["device"]?.string ?? "",
                              status: try strings(s, "status", in: what, required: true), flags: try strings(s, "flags", in: what),
                              devSize: try uint(s, "dev_size", in: what, default: 0), peStart: try uint(s, "pe_start", in: what),
                              peCount: try uint(s, "pe_count", in: what), tags: try strings(s, "tags", in: what),
                              extra: rest(s, known))
    }

    /// One LV section and its segments.
    private static func parseLV(name: String, _ s: [ConfigEntry]) throws -> LogicalVolume {
        let what = "LV \(name)"
        let known: Set<String> = ["id", "status", "flags", "tags", "creation_time", "creation_host", "segment_count"]
        let count = try uint(s, "segment_count", in: what)
        let segs = try s.filter { $0.value.section != nil }.map { try parseSegment($0.value.section!, in: "\(what) \($0.key)") }
        guard UInt64(segs.count) == count else { throw bad("\(what): segment_count \(count) but \(segs.count) segments") }
        var extra = rest(s, known).filter { $0.value.section == nil }
        extra.removeAll { $0.key == "segment_count" }
        if let t = s["creation_time"], t.integer == nil { throw bad("\(what): creation_time is not an integer") }
        return LogicalVolume(name: name, id: try uuid(s, in: what), status: try strings(s, "status", in: what, required: true),
                             flags: try strings(s, "flags", in: what), tags: try strings(s, "tags", in: what),
                             creationTime: s["creation_time"]?.integer, creationHost: s["creation_host"]?.string,
                             segments: segs.sorted { $0.startExtent < $1.startExtent }, extra: extra)
    }

    /// One linear segment.
    private static func parseSegment(_ s: [ConfigEntry], in what: String) throws -> LVSegment {
        let type = try str(s, "type", in: what)
        guard type == "striped" else { throw LVMError.unsupported("\(what): segment type \(type)") }
        guard try uint(s, "stripe_count", in: what) == 1 else { throw LVMError.unsupported("\(what): striped over several PVs") }
        let known: Set<String> = ["start_extent", "extent_count", "type", "stripe_count", "stripes"]
        if let k = s.first(where: { !known.contains($0.key) }) { throw LVMError.unsupported("\(what): key \(k.key)") }
        guard let stripes = s["stripes"]?.array, stripes.count == 2, let pv = stripes[0].string,
              let pe = stripes[1].integer, pe >= 0 else { throw bad("\(what): stripes is not [\"pvN\", extent]") }
        return LVSegment(startExtent: try uint(s, "start_extent", in: what), extentCount: try uint(s, "extent_count", in: what),
                         pv: pv, pvExtent: UInt64(pe))
    }

    // MARK: Writing

    /// The text as stored: lvm2's layout, ending in `"\n\n\0"` (the NUL included).
    public func encode() -> [UInt8] {
        var o = ""
        func line(_ s: String) { o += s; o += "\n" }
        func q(_ s: String) -> String {
            var r = "\""
            for c in s {
                switch c {
                case "\"": r += "\\\""
                case "\\": r += "\\\\"
                case "\n", "\r": r += " "
                default: r.append(c)
                }
            }
            return r + "\""
        }
        func list(_ a: [String]) -> String { "[" + a.map(q).joined(separator: ", ") + "]" }
        func value(_ v: ConfigValue) -> String {
            switch v {
            case let .integer(i): return String(i)
            case let .string(s): return q(s)
            case let .array(a): return "[" + a.map(value).joined(separator: ", ") + "]"
            case .section: return ""
            }
        }
        func extras(_ e: [ConfigEntry]) {
            for x in e {
                if let sec = x.value.section { line("\(x.key) {"); extras(sec); line("}") } else { line("\(x.key) = \(value(x.value))") }
            }
        }
        line("\(vg.name) {")
        line("id = \(q(vg.id.description))")
        line("seqno = \(vg.seqno)")
        line("format = \"lvm2\"")
        line("status = \(list(vg.status))")
        line("flags = \(list(vg.flags))")
        if !vg.tags.isEmpty { line("tags = \(list(vg.tags))") }
        extras(vg.extra)
        line("extent_size = \(vg.extentSize)")
        line("max_lv = \(vg.maxLV)")
        line("max_pv = \(vg.maxPV)")
        line("metadata_copies = \(vg.metadataCopies)")
        line("")
        line("physical_volumes {")
        for pv in vg.physicalVolumes {
            line("")
            line("\(pv.key) {")
            line("id = \(q(pv.id.description))")
            line("device = \(q(pv.device))")
            line("")
            line("status = \(list(pv.status))")
            line("flags = \(list(pv.flags))")
            if !pv.tags.isEmpty { line("tags = \(list(pv.tags))") }
            line("dev_size = \(pv.devSize)")
            line("pe_start = \(pv.peStart)")
            line("pe_count = \(pv.peCount)")
            extras(pv.extra)
            line("}")
        }
        line("}")
        if !vg.logicalVolumes.isEmpty {
            line("")
            line("logical_volumes {")
            for lv in vg.logicalVolumes {
                line("")
                line("\(lv.name) {")
                line("id = \(q(lv.id.description))")
                line("status = \(list(lv.status))")
                line("flags = \(list(lv.flags))")
                if !lv.tags.isEmpty { line("tags = \(list(lv.tags))") }
                if let t = lv.creationTime { line("creation_time = \(t)") }
                if let h = lv.creationHost { line("creation_host = \(q(h))") }
                extras(lv.extra)
                line("segment_count = \(lv.segments.count)")
                for (i, seg) in lv.segments.enumerated() {
                    line("")
                    line("segment\(i + 1) {")
                    line("start_extent = \(seg.startExtent)")
                    line("extent_count = \(seg.extentCount)")
                    line("")
                    line("type = \"striped\"")
                    line("stripe_count = 1")
                    line("")
                    line("stripes = [")
                    line("\(q(seg.pv)), \(seg.pvExtent)")
                    line("]")
                    line("}")
                }
                line("}")
            }
            line("}")
        }
        line("")
        line("}")
        line("# Generated by SwiftSM's LVM engine")
        line("")
        line("contents = \(q(MetadataText.contents))")
        line("version = 1")
        line("")
        line("description = \(q(description))")
        line("")
        line("creation_host = \(q(creationHost))")
        line("creation_time = \(creationTime)")
        line("")
        return Array(o.utf8) + [0]
    }
}
