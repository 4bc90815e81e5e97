import Foundation

/// How an SR was attached on this host (its `device_config`), written at `sr_attach` and removed
/// at `sr_detach`, so that a collector started later, outside any SMAPI call, reaches the same
/// container. Kept under the run directory, readable by root only (device_config may hold secrets).
public struct SRPlugRecord: Codable, Sendable, Equatable {
    /// The SR.
    public var sr: String
    /// The `device_config` of the attach.
    public var deviceConfig: [String: String]
    /// The SR's sm_config at the attach (`nosubdir`, ...); nil in records of earlier releases.
    public var smConfig: [String: String]?
    /// The SR's other_config at the attach (`nfs-timeout`, ...); nil in records of earlier releases.
    public var otherConfig: [String: String]?

    /// A record of SR `sr` attached with `deviceConfig`, its sm_config and other_config.
    public init(sr: String, deviceConfig: [String: String], smConfig: [String: String]? = nil, otherConfig: [String: String]? = nil) {
        self.sr = sr
        self.deviceConfig = deviceConfig
        self.smConfig = smConfig
        self.otherConfig = otherConfig
    }

    /// The record's file.
    public static func path(run: RunDirectory, sr: String) -> String { run.root + "/sr/" + sr + ".plug.json" }

    /// The record of SR `sr`, nil when it is not attached here.
    public static func read(run: RunDirectory, sr: String) -> SRPlugRecord? {
        guard let data = FileManager.default.contents(atPath: path(run: run, sr: sr)) else { return nil }
        return try? JSONDecoder().decode(SRPlugRecord.self, from: data)
    }

    /// Writes the record atomically (mode 0600).
    public func write(run: RunDirectory) throws {
        let file = Self.path(run: run, sr: sr)
        try FileManager.default.createDirectory(atPath: (file as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try JSONEncoder().encode(self).write(to: URL(fileURLWithPath: file), options: .atomic)
        chmod(file, 0o600)
    }

    /// Removes the record of SR `sr`.
    public static func remove(run: RunDirectory, sr: String) { unlink(path(run: run, sr: sr)) }
}
