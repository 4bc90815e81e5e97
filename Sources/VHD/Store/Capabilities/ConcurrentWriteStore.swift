/// A store whose writes may run on several threads at once, each to bytes no other write in
/// flight touches: the data path then plans a WRITE on its chain thread (allocating the blocks
/// it needs) and sends its data from I/O threads, several requests in flight, making the
/// sectors visible (bitmap bits) on the chain thread once the data is written. An NFS file on
/// a pool of connections adopts it; local files have their own fast path.
public protocol ConcurrentWriteStore: BlockStore {}
