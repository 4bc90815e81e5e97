/// A store that can move large, aligned transfers past the page cache (O_DIRECT), which is where
/// bulk copies (coalesce, convert) spend their time on a busy host. Asked for where it helps;
/// stores without it take the generic path.
public protocol DirectIOStore: BlockStore {
    /// When set, large aligned transfers bypass the page cache; small ones stay buffered.
    var preferDirectIO: Bool { get set }
}
