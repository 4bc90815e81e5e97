/// The constants of the NBD handshake that the TLS front end speaks (fixed newstyle).
enum NBDProtocol {
    /// `NBDMAGIC`.
    static let nbdMagic: UInt64 = 0x4e42_444d_4147_4943
    /// `IHAVEOPT`: the greeting's second word and every option's first.
    static let optionMagic: UInt64 = 0x4948_4156_454f_5054
    /// The first word of every option reply.
    static let replyMagic: UInt64 = 0x0003_e889_0455_65a9
    /// Handshake flags: fixed newstyle, no zeroes.
    static let flagFixedNewstyle: UInt16 = 1, flagNoZeroes: UInt16 = 2

    /// Options.
    static let optExportName: UInt32 = 1, optAbort: UInt32 = 2, optList: UInt32 = 3, optStartTLS: UInt32 = 5,
               optInfo: UInt32 = 6, optGo: UInt32 = 7, optStructuredReply: UInt32 = 8,
               optListMetaContext: UInt32 = 9, optSetMetaContext: UInt32 = 10
    /// Reply types.
    static let repAck: UInt32 = 1, repInfo: UInt32 = 3
    /// Error reply types.
    static let errUnsup: UInt32 = 0x8000_0001, errPolicy: UInt32 = 0x8000_0002, errInvalid: UInt32 = 0x8000_0003,
               errPlatform: UInt32 = 0x8000_0004, errTLSRequired: UInt32 = 0x8000_0005, errUnknown: UInt32 = 0x8000_0006
    /// `NBD_INFO_NAME`.
    static let infoName: UInt16 = 1
    /// Largest option payload accepted.
    static let maxOptionLength = 65536
}
