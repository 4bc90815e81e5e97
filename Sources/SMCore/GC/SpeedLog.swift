import Foundation

/// The last coalesce speeds of an SR (bytes of allocated child blocks merged per second), from
/// which the collector predicts how long a leaf merge will pause a running disk.
public struct SpeedLog: Sendable {
    /// Samples kept.
    public static let capacity = 10
    /// The file (one number per line).
    public let path: String

    /// The log in `path`.
    public init(path: String) { self.path = path }

    /// The recorded samples, oldest first.
    public func samples() -> [Double] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap { Double($0) }.filter { $0 > 0 && $0.isFinite }
    }

    /// The mean speed, nil without samples.
    public func mean() -> Double? {
        let s = samples()
        return s.isEmpty ? nil : s.reduce(0, +) / Double(s.count)
    }

    /// Records a sample (the oldest beyond `capacity` are dropped).
    public func record(_ bytesPerSecond: Double) {
        guard bytesPerSecond > 0, bytesPerSecond.isFinite else { return }
        let kept = (samples() + [bytesPerSecond]).suffix(Self.capacity)
        try? FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try? Data(kept.map { String($0) }.joined(separator: "\n").utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
    }
}
