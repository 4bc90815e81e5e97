import NIOCore

/// Builds the bytes the server sends: option replies in the handshake, simple replies and
/// structured chunks in transmission.
enum NBDReplyEncoder {
    /// Size of a simple reply header.
    static let simpleHeader = 16
    /// Size of a structured chunk header.
    static let chunkHeader = 20

    /// The greeting: NBDMAGIC, IHAVEOPT, handshake flags.
    static func greeting(_ allocator: ByteBufferAllocator) -> ByteBuffer {
        var b = allocator.buffer(capacity: 18)
        b.writeInteger(NBD.nbdMagic)
        b.writeInteger(NBD.ihaveopt)
        b.writeInteger(NBD.HandshakeFlag.fixedNewstyle | NBD.HandshakeFlag.noZeroes)
        return b
    }

    /// One option reply with `payload` bytes.
    static func optionReply(_ b: inout ByteBuffer, option: UInt32, type: UInt32, payload: ByteBuffer? = nil) {
        b.writeInteger(NBD.optionReplyMagic)
        b.writeInteger(option)
        b.writeInteger(type)
        b.writeInteger(UInt32(payload?.readableBytes ?? 0))
        if var p = payload { b.writeBuffer(&p) }
    }

    /// An error option reply carrying a message.
    static func optionError(_ b: inout ByteBuffer, option: UInt32, type: UInt32, message: String) {
        var p = ByteBuffer()
        p.writeString(String(message.prefix(256)))
        optionReply(&b, option: option, type: type, payload: p)
    }

    /// A simple reply header (and no data).
    static func simple(_ b: inout ByteBuffer, cookie: UInt64, error: UInt32) {
        b.writeInteger(NBD.simpleReplyMagic)
        b.writeInteger(error)
        b.writeInteger(cookie)
    }

    /// A structured chunk header.
    static func chunk(_ b: inout ByteBuffer, flags: UInt16, type: UInt16, cookie: UInt64, length: UInt32) {
        b.writeInteger(NBD.structuredReplyMagic)
        b.writeInteger(flags)
        b.writeInteger(type)
        b.writeInteger(cookie)
        b.writeInteger(length)
    }

    /// A final ERROR chunk with no message.
    static func errorChunk(_ b: inout ByteBuffer, cookie: UInt64, error: UInt32) {
        chunk(&b, flags: NBD.Chunk.flagDone, type: NBD.Chunk.error, cookie: cookie, length: 6)
        b.writeInteger(error)
        b.writeInteger(UInt16(0))
    }

    /// Fills the room left in front of READ data: a simple reply header, or an OFFSET_DATA chunk
    /// header with DONE and the offset.
    static func fillReadHeader(_ b: inout ByteBuffer, headerRoom: Int, structured: Bool, cookie: UInt64, offset: UInt64) {
        let start = b.readerIndex
        let dataLength = b.readableBytes - headerRoom
        if structured {
            b.setInteger(NBD.structuredReplyMagic, at: start)
            b.setInteger(NBD.Chunk.flagDone, at: start + 4)
            b.setInteger(NBD.Chunk.offsetData, at: start + 6)
            b.setInteger(cookie, at: start + 8)
            b.setInteger(UInt32(8 + dataLength), at: start + 16)
            b.setInteger(offset, at: start + 20)
        } else {
            b.setInteger(NBD.simpleReplyMagic, at: start)
            b.setInteger(UInt32(0), at: start + 4)
            b.setInteger(cookie, at: start + 8)
        }
    }

    /// Room to leave in front of READ data.
    static func readHeaderRoom(structured: Bool) -> Int { structured ? chunkHeader + 8 : simpleHeader }

    /// A BLOCK_STATUS chunk for context `id` (the reply's final chunk when `last`).
    static func blockStatus(_ b: inout ByteBuffer, cookie: UInt64, id: UInt32, extents: [(length: UInt32, flags: UInt32)],
                            last: Bool = true) {
        chunk(&b, flags: last ? NBD.Chunk.flagDone : 0, type: NBD.Chunk.blockStatus, cookie: cookie, length: UInt32(4 + 8 * extents.count))
        b.writeInteger(id)
        for e in extents {
            b.writeInteger(e.length)
            b.writeInteger(e.flags)
        }
    }
}
