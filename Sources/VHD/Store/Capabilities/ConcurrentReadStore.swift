/// A store whose reads may run on several threads at once (while no write changes the bytes
/// they read): the data path then plans a READ on its chain thread and runs it on I/O threads,
/// several requests in flight, as it does for local files. An NFS file on a pool of
/// connections adopts it.
public protocol ConcurrentReadStore: BlockStore {}
