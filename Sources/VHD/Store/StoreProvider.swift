/// A namespace of images that name each other by path: a directory of files, a volume group,
/// or memory. Parent locators are resolved relative to the child's folder within it.
public protocol StoreProvider: AnyObject {
    /// Opens an existing image's store.
    func open(_ path: String, writable: Bool) throws -> any BlockStore
    /// Creates a new empty store (failing if it exists).
    func create(_ path: String) throws -> any BlockStore
    /// Creates a new store for an image of `size` bytes (failing if it exists): files start empty
    /// and grow as written; fixed-size volumes (LVs) are made at least `size` bytes.
    func create(_ path: String, size: UInt64) throws -> any BlockStore
    /// Whether something exists at `path`.
    func exists(_ path: String) -> Bool
    /// Removes the store at `path`.
    func remove(_ path: String) throws
    /// Atomically renames a store.
    func rename(_ from: String, to: String) throws
    /// Unix seconds of the last modification, if known.
    func modificationTime(_ path: String) -> Int?
    /// A canonical spelling of `path` (for cycle detection and relative locators).
    func canonical(_ path: String) -> String
    /// Names (not paths) of the entries of a folder.
    func list(_ directory: String) throws -> [String]
}

extension StoreProvider {
    /// Stores grow as they are written unless the provider says otherwise: the size is a hint.
    public func create(_ path: String, size: UInt64) throws -> any BlockStore { try create(path) }
}

/// Path arithmetic shared by every provider: `/`-separated, no symlink resolution.
public enum StorePath {
    /// The folder part of `path` ("." when there is none).
    public static func directory(of path: String) -> String {
        guard let i = path.lastIndex(of: "/") else { return "." }
        return i == path.startIndex ? "/" : String(path[..<i])
    }

    /// The last component of `path`.
    public static func basename(_ path: String) -> String {
        guard let i = path.lastIndex(of: "/") else { return path }
        return String(path[path.index(after: i)...])
    }

    /// `relative` resolved against `directory` ("." and ".." folded); absolute paths stay.
    public static func join(_ directory: String, _ relative: String) -> String {
        normalize(relative.hasPrefix("/") ? relative : directory + "/" + relative)
    }

    /// Folds "." and ".." components and repeated slashes.
    public static func normalize(_ path: String) -> String {
        let absolute = path.hasPrefix("/")
        var parts: [Substring] = []
        for c in path.split(separator: "/", omittingEmptySubsequences: true) {
            if c == "." { continue }
            if c == "..", let last = parts.last, last != ".." { parts.removeLast(); continue }
            if c == "..", absolute { continue }
            parts.append(c)
        }
        let body = parts.joined(separator: "/")
        return absolute ? "/" + body : (body.isEmpty ? "." : body)
    }

    /// The path of `target` relative to the folder `from` (both normalized the same way).
    public static func relative(_ target: String, from: String) -> String {
        let t = normalize(target).split(separator: "/"), f = normalize(from).split(separator: "/")
        var i = 0
        while i < t.count - 1 && i < f.count && t[i] == f[i] { i += 1 }
        let up = Array(repeating: "..", count: f.count - i)
        return (up + t[i...].map(String.init)).joined(separator: "/")
    }
}
