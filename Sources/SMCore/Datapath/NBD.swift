/// The NBD wire constants (`NetworkBlockDevice/nbd` doc/proto.md; reference/nbd-protocol.md):
/// magics, options, replies, info types, commands, flags and error numbers. All big-endian.
public enum NBD {
    /// "NBDMAGIC", first word of the greeting.
    public static let nbdMagic: UInt64 = 0x4e42_444d_4147_4943
    /// "IHAVEOPT", second word of the greeting and prefix of every option request.
    public static let ihaveopt: UInt64 = 0x4948_4156_454f_5054
    /// Prefix of every option reply.
    public static let optionReplyMagic: UInt64 = 0x0003_e889_0455_65a9
    /// Prefix of every transmission request.
    public static let requestMagic: UInt32 = 0x2560_9513
    /// Prefix of a simple reply.
    public static let simpleReplyMagic: UInt32 = 0x6744_6698
    /// Prefix of a structured reply chunk.
    public static let structuredReplyMagic: UInt32 = 0x668e_33ef

    /// Largest payload a READ or WRITE may carry (the protocol's default maximum, 32 MiB).
    public static let maxPayload = 32 << 20
    /// Largest option payload accepted into memory (longer ones are skipped and refused).
    public static let maxOptionLength = 64 << 10
    /// Longest string (export name, context name) the protocol allows.
    public static let maxStringLength = 4096

    /// Handshake flags the server offers.
    public enum HandshakeFlag {
        /// NBD_FLAG_FIXED_NEWSTYLE.
        public static let fixedNewstyle: UInt16 = 1
        /// NBD_FLAG_NO_ZEROES.
        public static let noZeroes: UInt16 = 2
    }

    /// Client flags answering the greeting.
    public enum ClientFlag {
        /// NBD_FLAG_C_FIXED_NEWSTYLE.
        public static let fixedNewstyle: UInt32 = 1
        /// NBD_FLAG_C_NO_ZEROES.
        public static let noZeroes: UInt32 = 2
    }

    /// Option numbers (NBD_OPT_*).
    public enum Option {
        /// Legacy export selection, ends the handshake without an option reply.
        public static let exportName: UInt32 = 1
        /// Ends the handshake without transmission.
        public static let abort: UInt32 = 2
        /// Lists exports.
        public static let list: UInt32 = 3
        /// TLS upgrade (not supported).
        public static let startTLS: UInt32 = 5
        /// Describes an export.
        public static let info: UInt32 = 6
        /// Describes and selects an export, then transmission.
        public static let go: UInt32 = 7
        /// Turns on structured replies.
        public static let structuredReply: UInt32 = 8
        /// Lists metadata contexts.
        public static let listMetaContext: UInt32 = 9
        /// Selects metadata contexts.
        public static let setMetaContext: UInt32 = 10
    }

    /// Option reply types (NBD_REP_*).
    public enum Reply {
        /// Success, final reply.
        public static let ack: UInt32 = 1
        /// One export of a LIST.
        public static let server: UInt32 = 2
        /// One info item of INFO/GO.
        public static let info: UInt32 = 3
        /// One metadata context.
        public static let metaContext: UInt32 = 4
        /// Option not supported.
        public static let errUnsupported: UInt32 = 0x8000_0001
        /// Refused by policy.
        public static let errPolicy: UInt32 = 0x8000_0002
        /// Malformed or invalid option.
        public static let errInvalid: UInt32 = 0x8000_0003
        /// Unknown export.
        public static let errUnknown: UInt32 = 0x8000_0006
        /// The server is shutting down.
        public static let errShutdown: UInt32 = 0x8000_0007
        /// The option's payload is too big.
        public static let errTooBig: UInt32 = 0x8000_0009
    }

    /// Info types inside NBD_REP_INFO.
    public enum InfoType {
        /// Size and transmission flags.
        public static let export: UInt16 = 0
        /// Canonical name.
        public static let name: UInt16 = 1
        /// Description.
        public static let description: UInt16 = 2
        /// Block size constraints.
        public static let blockSize: UInt16 = 3
    }

    /// Transmission flags (NBD_FLAG_*).
    public enum TransmissionFlag {
        /// Always set.
        public static let hasFlags: UInt16 = 1 << 0
        /// The export refuses writes.
        public static let readOnly: UInt16 = 1 << 1
        /// FLUSH supported.
        public static let sendFlush: UInt16 = 1 << 2
        /// FUA supported.
        public static let sendFUA: UInt16 = 1 << 3
        /// TRIM supported.
        public static let sendTrim: UInt16 = 1 << 5
        /// WRITE_ZEROES supported.
        public static let sendWriteZeroes: UInt16 = 1 << 6
        /// DF supported (structured replies only).
        public static let sendDF: UInt16 = 1 << 7
        /// All connections share one cache: FLUSH on one covers all.
        public static let canMultiConn: UInt16 = 1 << 8
        /// CACHE supported.
        public static let sendCache: UInt16 = 1 << 10
    }

    /// Command types (NBD_CMD_*).
    public enum Command {
        /// Read.
        public static let read: UInt16 = 0
        /// Write.
        public static let write: UInt16 = 1
        /// Disconnect.
        public static let disc: UInt16 = 2
        /// Flush.
        public static let flush: UInt16 = 3
        /// Discard hint.
        public static let trim: UInt16 = 4
        /// Prefetch hint.
        public static let cache: UInt16 = 5
        /// Zero a range.
        public static let writeZeroes: UInt16 = 6
        /// Allocation status.
        public static let blockStatus: UInt16 = 7
    }

    /// Command flags (NBD_CMD_FLAG_*).
    public enum CommandFlag {
        /// Force unit access.
        public static let fua: UInt16 = 1 << 0
        /// WRITE_ZEROES: keep the range allocated.
        public static let noHole: UInt16 = 1 << 1
        /// READ: one content chunk.
        public static let df: UInt16 = 1 << 2
        /// BLOCK_STATUS: one extent.
        public static let reqOne: UInt16 = 1 << 3
        /// WRITE_ZEROES: fail unless fast.
        public static let fastZero: UInt16 = 1 << 4
    }

    /// Structured reply chunk types.
    public enum Chunk {
        /// No payload, success.
        public static let none: UInt16 = 0
        /// Data at an offset.
        public static let offsetData: UInt16 = 1
        /// Zeros at an offset.
        public static let offsetHole: UInt16 = 2
        /// Extents of one metadata context.
        public static let blockStatus: UInt16 = 5
        /// An error for the whole request.
        public static let error: UInt16 = 0x8001
        /// The DONE flag of a chunk.
        public static let flagDone: UInt16 = 1
    }

    /// Error numbers on the wire.
    public enum Errno {
        /// Operation not permitted (write to a read-only export).
        public static let eperm: UInt32 = 1
        /// I/O error.
        public static let eio: UInt32 = 5
        /// Out of memory.
        public static let enomem: UInt32 = 12
        /// Invalid argument.
        public static let einval: UInt32 = 22
        /// No space (writes past the end).
        public static let enospc: UInt32 = 28
        /// Value too large.
        public static let eoverflow: UInt32 = 75
        /// Not supported (FAST_ZERO).
        public static let enotsup: UInt32 = 95
        /// The server is shutting down.
        public static let eshutdown: UInt32 = 108
    }

    /// The allocation metadata context.
    public static let baseAllocation = "base:allocation"
    /// `base:allocation` status: not allocated.
    public static let stateHole: UInt32 = 1
    /// `base:allocation` status: reads as zeros.
    public static let stateZero: UInt32 = 2
}
