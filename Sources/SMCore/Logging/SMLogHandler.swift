import Foundation
import Logging

/// swift-log handler writing SMlog-style lines to a file: one line per event with time, pid,
/// level, the SR and VDI uuids from the metadata, and the message. Secrets never reach it:
/// callers log commands and uuids, not device_config values.
public struct SMLogHandler: LogHandler {
    /// The file appended to.
    public let path: String
    /// Also echo to stderr.
    public let echo: Bool
    /// Minimum level written.
    public var logLevel: Logger.Level = .info
    /// Metadata attached to every line.
    public var metadata: Logger.Metadata = [:]
    let label: String

    /// A handler appending to `path`.
    public init(label: String, path: String, echo: Bool = false) {
        self.label = label
        self.path = path
        self.echo = echo
    }

    /// Per-key metadata access.
    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    /// Appends one line (O_APPEND: lines of concurrent processes do not interleave).
    public func log(event: LogEvent) {
        var all = metadata
        if let m = event.metadata { all.merge(m) { $1 } }
        let tags = ["sr", "vdi"].compactMap { k in all[k].map { "\(k)=\($0)" } }.joined(separator: " ")
        let stamp = ISO8601DateFormatter().string(from: Date())
        let line = "\(stamp) \(label)[\(getpid())] \(event.level) \(tags.isEmpty ? "" : tags + " ")\(event.message)\n"
        let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
        if fd >= 0 {
            _ = line.withCString { write(fd, $0, strlen($0)) }
            close(fd)
        }
        if echo { FileHandle.standardError.write(Data(line.utf8)) }
    }
}
