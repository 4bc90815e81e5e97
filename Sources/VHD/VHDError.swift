/// Everything that can go wrong reading or writing a VHD, each naming what is wrong and where.
public enum VHDError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A system call failed.
    case io(path: String, operation: String, errno: Int32)
    /// A read reached past the end of the store.
    case shortRead(path: String, offset: UInt64, count: Int)
    /// A write was attempted on a store or image opened read-only.
    case readOnly(path: String)
    /// A block device or volume is too small for what must be written.
    case noSpace(path: String, needed: UInt64, available: UInt64)
    /// No valid footer was found (the reason of the primary copy is given).
    case invalidFooter(path: String, reason: String)
    /// The dynamic disk header is unusable.
    case invalidHeader(path: String, reason: String)
    /// The block allocation table is unusable.
    case invalidBAT(path: String, reason: String)
    /// The batmap is unusable for writing.
    case invalidBatmap(path: String, reason: String)
    /// A parent locator is malformed.
    case invalidLocator(path: String, reason: String)
    /// No parent locator of a differencing disk resolves to an existing file.
    case parentNotFound(path: String, tried: [String])
    /// The parent found does not carry the uuid the child expects.
    case parentUUIDMismatch(path: String, parent: String, expected: String, found: String)
    /// The chain is longer than allowed.
    case chainTooDeep(path: String, limit: Int)
    /// A parent locator leads back into the chain.
    case chainCycle(path: String)
    /// The image is valid but uses something this operation does not support.
    case unsupported(path: String, reason: String)
    /// A request reaches outside the virtual disk.
    case outOfRange(offset: UInt64, length: UInt64, size: UInt64)
    /// An argument is unusable.
    case invalidArgument(String)
    /// The image failed its consistency check; nothing was written.
    case checkFailed(path: String, problems: [String])
    /// The operation was cancelled by its caller.
    case cancelled

    /// A one-line explanation.
    public var description: String {
        switch self {
        case let .io(path, op, e): return "\(path): \(op) failed: \(String(cString: strerrorText(e))) (errno \(e))"
        case let .shortRead(path, off, n): return "\(path): short read of \(n) bytes at offset \(off) (past end of file)"
        case let .readOnly(path): return "\(path): opened read-only"
        case let .noSpace(path, needed, available): return "\(path): needs \(needed) bytes, only \(available) available"
        case let .invalidFooter(path, r): return "\(path): footer invalid: \(r)"
        case let .invalidHeader(path, r): return "\(path): header invalid: \(r)"
        case let .invalidBAT(path, r): return "\(path): BAT invalid: \(r)"
        case let .invalidBatmap(path, r): return "\(path): batmap invalid: \(r)"
        case let .invalidLocator(path, r): return "\(path): parent locator invalid: \(r)"
        case let .parentNotFound(path, tried): return "\(path): parent not found (tried \(tried.joined(separator: ", ")))"
        case let .parentUUIDMismatch(path, parent, e, f): return "\(path): parent \(parent) has uuid \(f), expected \(e)"
        case let .chainTooDeep(path, limit): return "\(path): chain deeper than \(limit)"
        case let .chainCycle(path): return "\(path): parent locators form a cycle"
        case let .unsupported(path, r): return "\(path): unsupported: \(r)"
        case let .outOfRange(off, len, size): return "request of \(len) bytes at \(off) is outside the disk of \(size) bytes"
        case let .invalidArgument(r): return "invalid argument: \(r)"
        case let .checkFailed(path, problems): return "\(path): check failed: \(problems.joined(separator: "; "))"
        case .cancelled: return "cancelled"
        }
    }
}

#if canImport(Glibc)
import Glibc
private func strerrorText(_ e: Int32) -> UnsafeMutablePointer<CChar> { strerror(e) }
#endif
