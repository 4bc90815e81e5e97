import NIOCore

/// What the chain thread hands back to a connection for one request.
public enum NBDCommandResult: Sendable {
    /// Success without data (WRITE, FLUSH, TRIM, WRITE_ZEROES, CACHE).
    case done
    /// READ data: a buffer whose first `headerRoom` bytes are left for the reply header.
    case data(ByteBuffer, headerRoom: Int)
    /// BLOCK_STATUS: for each selected context its extents (length, status flags), consecutive
    /// from the request's offset.
    case status([(context: NBDMetaContext, extents: [(length: UInt32, flags: UInt32)])])
    /// Failure with an NBD error number.
    case failed(UInt32)
}
