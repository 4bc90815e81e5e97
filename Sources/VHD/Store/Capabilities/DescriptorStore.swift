import SystemPackage

/// A store backed by a descriptor of this host's kernel (a local file or block device): it can
/// be sent with sendfile (zero copy), read without blocking when cached (preadv2 RWF_NOWAIT),
/// written by pwrite from any thread, and it shares one page cache with every other process on
/// the host that opens the same volume (so a writer in one process is seen by a reader in
/// another without a flush). Stores reached over a network library (libnfs, libiscsi) do not
/// adopt it.
public protocol DescriptorStore: BlockStore {
    /// The buffered descriptor; valid while the store is open.
    var descriptor: FileDescriptor { get }
}
