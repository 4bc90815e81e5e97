import Foundation

/// Paths and loaders for the SMAPI fixtures under `<package root>/fixtures/smapi`.
enum Fixtures {
    /// The package root, found from this file's path (`Tests/SMCoreTests/Fixtures.swift`).
    static let packageRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// `fixtures/smapi`.
    static let smapi = packageRoot.appendingPathComponent("fixtures/smapi")

    /// `fixtures/smapi/requests`.
    static let requests = smapi.appendingPathComponent("requests")

    /// The file names of every request document, sorted.
    static let requestNames: [String] = {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: requests.path)) ?? []
        return names.filter { $0.hasSuffix(".xml") }.sorted()
    }()

    /// The text of request document `name`.
    static func request(_ name: String) throws -> String {
        try String(contentsOf: requests.appendingPathComponent(name), encoding: .utf8)
    }

    /// The SR type and command a request file is named after (`nfs-vdi_create.xml`).
    static func split(_ name: String) -> (type: String, command: String) {
        let stem = name.dropLast(".xml".count)
        let dash = stem.firstIndex(of: "-")!
        return (String(stem[..<dash]), String(stem[stem.index(after: dash)...]))
    }

    /// The rows of `errorcodes.tsv` (header skipped).
    static func errorCodes() throws -> [(code: Int32, name: String, message: String)] {
        let text = try String(contentsOf: smapi.appendingPathComponent("errorcodes.tsv"), encoding: .utf8)
        return text.split(separator: "\n", omittingEmptySubsequences: true).dropFirst().map { line in
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false)
            return (Int32(fields[0])!, String(fields[1]), String(fields[2]))
        }
    }
}
