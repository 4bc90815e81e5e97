import Foundation

/// The TLS identity of toolstackd's TCP listener: a self-signed certificate and its key in one
/// PEM file under the state directory, made at first start with `openssl` as xapi's `gencert` does.
public enum ServerCertificate {
    /// Why no certificate could be made.
    public struct Failure: Error, CustomStringConvertible {
        /// What went wrong.
        public var description: String
    }

    /// The PEM file (key then certificate) for `configuration`, made when missing.
    public static func ensure(_ configuration: ToolstackConfiguration) throws -> String {
        let path = configuration.stateDirectory + "/xapi-ssl.pem"
        if FileManager.default.fileExists(atPath: path) { return path }
        let key = path + ".key.tmp", cert = path + ".crt.tmp"
        defer { try? FileManager.default.removeItem(atPath: key); try? FileManager.default.removeItem(atPath: cert) }
        let name = configuration.hostname
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        p.arguments = ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "3650",
                       "-keyout", key, "-out", cert, "-subj", "/CN=\(name)",
                       "-addext", "subjectAltName=DNS:\(name),DNS:localhost,IP:127.0.0.1"]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        guard p.terminationStatus == 0, let k = FileManager.default.contents(atPath: key),
              let c = FileManager.default.contents(atPath: cert) else {
            throw Failure(description: "openssl req failed (status \(p.terminationStatus))")
        }
        let tmp = path + ".tmp"
        guard FileManager.default.createFile(atPath: tmp, contents: k + c, attributes: [.posixPermissions: 0o600]) else {
            throw Failure(description: "cannot write \(tmp)")
        }
        try FileManager.default.moveItem(atPath: tmp, toPath: path)
        return path
    }
}
