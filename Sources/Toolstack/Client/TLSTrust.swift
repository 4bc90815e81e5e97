/// Which server certificates a TLS client accepts.
public enum TLSTrust: Sendable, Hashable {
    /// Certificates the system's CA store vouches for (the default).
    case systemRoots
    /// Certificates signed by (or equal to) one in this PEM file: a CA, or the host's own
    /// self-signed certificate (what `host.get_server_certificate` returns).
    case file(String)
    /// Any certificate: only when the user asks for it (`xe --no-verify`).
    case anyCertificate
}
