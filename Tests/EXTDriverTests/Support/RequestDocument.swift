import Foundation
import SMCore

/// Paths of the SMAPI fixtures under `<package root>/fixtures/smapi`.
enum E2EFixtures {
    /// The package root, found from this file's path (`Tests/EXTDriverTests/Support/RequestDocument.swift`).
    static let packageRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// `fixtures/smapi/requests`.
    static let requests = packageRoot.appendingPathComponent("fixtures/smapi/requests")

    /// The commands with an `ext-<command>.xml` document, sorted.
    static let extCommands: [String] = {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: requests.path)) ?? []
        return names.filter { $0.hasPrefix("ext-") && $0.hasSuffix(".xml") }
            .map { String($0.dropFirst(4).dropLast(4)) }.sorted()
    }()

    /// The raw text of `<driver>-<command>.xml`.
    static func text(_ command: String, driver: String = "ext") throws -> String {
        try String(contentsOf: requests.appendingPathComponent("\(driver)-\(command).xml"), encoding: .utf8)
    }

    /// The `session_ref` of every ext, nfs and lvmoiscsi document (what the fake xapi must accept).
    static func sessionRefs() throws -> [String] {
        try ["ext", "nfs", "lvmoiscsi"].flatMap { driver in
            try extCommands.compactMap { command in
                try RequestDocument(command: command, values: [:], driver: driver).string("session_ref")
            }
        }
    }

    /// The nfs documents' fixed references, by the ext document's reference of the same role
    /// (SR, VDI, compose parent, CBT target): they are read as the ext ones, so one fake xapi
    /// and one life cycle serve both drivers.
    static let nfsRefs = ["OpaqueRef:b45ef97c-b45f-472f-81c2-067e1a4cee26": srRef,
                          "OpaqueRef:056f45b8-0ded-4cbc-a575-937fcc5b6a73": vdiRef,
                          "OpaqueRef:1edaccf6-8742-499e-b73f-6c2e37731ed3": composeParentRef,
                          "OpaqueRef:55fd2fd8-2994-47c3-88a3-b0671c862e01": cbtToRef]

    /// The lvmoiscsi documents' fixed references, read as the ext ones (as `nfsRefs`); their host
    /// ref is the ext documents' already.
    static let lvmRefs = ["OpaqueRef:a1d1bfc2-384c-4fc5-9d53-40bb49eeb223": srRef,
                          "OpaqueRef:8857b8d2-1630-4641-a9da-4c3c8ac2e2dd": vdiRef,
                          "OpaqueRef:af3b288f-1a65-477b-a0cd-e9a385045f0d": composeParentRef,
                          "OpaqueRef:a53f1c95-50c6-4b69-9892-fc0a52b4bcdb": cbtToRef]

    /// Fixed references of the ext documents (`README.md` of the reference).
    static let hostRef = "OpaqueRef:472f9ba6-2ea6-4784-8743-3247447b1ed6"
    static let srRef = "OpaqueRef:62d0729b-70b7-44cf-9ea2-1d7931eea2d3"
    static let vdiRef = "OpaqueRef:50b57ec6-9293-41a0-aac9-6db0d31591f6"
    static let composeParentRef = "OpaqueRef:7b016441-17a2-41e6-9945-4ca6ac8e8bef"
    static let cbtToRef = "OpaqueRef:98a11190-d81d-4bc2-ba2d-47cf0feb1df1"
}

/// One request document: a fixture with its placeholders filled, optionally edited member by
/// member (the XML-RPC struct is decoded, changed, and encoded again in the document's own style).
struct RequestDocument {
    /// The command (file name and method name).
    let command: String
    /// The document text after placeholder substitution, before any edit.
    let original: String
    /// The decoded call.
    private(set) var call: XMLRPCMethodCall
    /// Whether a member was changed (the text is then re-encoded).
    private(set) var edited = false
    /// The byte layout of the document (the `vdi_attach_from_config` one is Python's).
    let style: XMLRPCStyle

    /// Loads `<driver>-<command>.xml` and replaces `{{KEY}}` by `values[KEY]` (unknown keys stay).
    init(command: String, values: [String: String], driver: String = "ext") throws {
        var text = try E2EFixtures.text(command, driver: driver)
        for (key, value) in values { text = text.replacingOccurrences(of: "{{\(key)}}", with: value) }
        if driver == "nfs" {
            for (nfs, ext) in E2EFixtures.nfsRefs { text = text.replacingOccurrences(of: nfs, with: ext) }
        }
        if driver == "lvmoiscsi" {
            for (lvm, ext) in E2EFixtures.lvmRefs { text = text.replacingOccurrences(of: lvm, with: ext) }
        }
        self.command = command
        self.original = text
        self.call = try XMLRPCDecoder().decodeMethodCall(text)
        self.style = text.hasPrefix("<?xml") ? .python : .xapi
    }

    /// The document to put on the command line.
    var text: String { edited ? XMLRPCEncoder(style: style).encode(call) : original }

    /// The request struct's members.
    var members: [XMLRPCMember] { call.params.first?.structMembers ?? [] }

    /// A member's value.
    subscript(member name: String) -> XMLRPCValue? {
        get { members.first { $0.name == name }?.value }
        set {
            var m = members
            if let i = m.firstIndex(where: { $0.name == name }) {
                if let newValue { m[i].value = newValue } else { m.remove(at: i) }
            } else if let newValue {
                m.append(XMLRPCMember(name, newValue))
            }
            call.params = [.struct(m)]
            edited = true
        }
    }

    /// A string member.
    func string(_ name: String) -> String? { self[member: name]?.stringValue }

    /// `device_config` as a string map in document order.
    var deviceConfig: [(String, String)] {
        (self[member: "device_config"]?.structMembers ?? []).map { ($0.name, $0.value.stringValue ?? "") }
    }

    /// Edits the members of `device_config`.
    mutating func editDeviceConfig(_ edit: (inout [XMLRPCMember]) -> Void) {
        var m = self[member: "device_config"]?.structMembers ?? []
        edit(&m)
        self[member: "device_config"] = .struct(m)
    }

    /// Path mode: the `device` member of `device_config` becomes `path` = `directory`.
    mutating func usePath(_ directory: String) {
        editDeviceConfig { m in
            if let i = m.firstIndex(where: { $0.name == "device" }) {
                m[i] = XMLRPCMember("path", .string(directory))
            } else {
                m.append(XMLRPCMember("path", .string(directory)))
            }
        }
    }

    /// Replaces the positional `args`.
    mutating func setArgs(_ args: [String]) { self[member: "args"] = .array(args.map { .string($0) }) }
}
