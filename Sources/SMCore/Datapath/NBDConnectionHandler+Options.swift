import NIOCore

/// The handshake's option haggling (proto.md "Option haggling"; reference/nbd-protocol.md §2).
extension NBDConnectionHandler {
    /// Block size constraints sent with every INFO/GO: any alignment, 4 KiB preferred, 32 MiB payloads.
    static let blockSizes: (minimum: UInt32, preferred: UInt32, maximum: UInt32) = (1, 4096, UInt32(NBD.maxPayload))

    /// Reads one option request when it is complete and answers it.
    func parseOption(_ context: ChannelHandlerContext) -> Bool {
        guard cumulation!.readableBytes >= 16 else { return false }
        let start = cumulation!.readerIndex
        let magic = cumulation!.getInteger(at: start, as: UInt64.self)!
        let option = cumulation!.getInteger(at: start + 8, as: UInt32.self)!
        let length = Int(cumulation!.getInteger(at: start + 12, as: UInt32.self)!)
        guard magic == NBD.ihaveopt else {
            close(context)
            return false
        }
        if length > NBD.maxOptionLength {
            if option == NBD.Option.exportName {      // no error reply exists for it
                close(context)
                return false
            }
            cumulation!.moveReaderIndex(forwardBy: 16)
            pending = .skipOption(option: option, remaining: length)
            return true
        }
        guard cumulation!.readableBytes >= 16 + length else { return false }
        cumulation!.moveReaderIndex(forwardBy: 16)
        var data = cumulation!.readSlice(length: length)!
        handleOption(context, option: option, data: &data)
        return true
    }

    func handleOption(_ context: ChannelHandlerContext, option: UInt32, data: inout ByteBuffer) {
        typealias O = NBD.Option
        var out = context.channel.allocator.buffer(capacity: 128)
        defer { if out.readableBytes > 0 { send(context, out) } }
        func fail(_ type: UInt32, _ message: String) {
            NBDReplyEncoder.optionError(&out, option: option, type: type, message: message)
        }
        switch option {
        case O.exportName:
            let name = data.readString(length: data.readableBytes) ?? ""
            guard export.matches(name) else {
                close(context)
                return
            }
            size = worker.virtualSize
            out.writeInteger(size)
            out.writeInteger(export.transmissionFlags(structuredReplies: structured))
            if !clientNoZeroes { out.writeRepeatingByte(0, count: 124) }
            phase = .transmission
        case O.abort:
            NBDReplyEncoder.optionReply(&out, option: option, type: NBD.Reply.ack)
            send(context, out)
            out.clear()
            closeAfterWrites(context)
        case O.list:
            guard data.readableBytes == 0 else { return fail(NBD.Reply.errInvalid, "LIST takes no data") }
            var p = ByteBuffer()
            p.writeInteger(UInt32(export.name.utf8.count))
            p.writeString(export.name)
            p.writeString(export.description)
            NBDReplyEncoder.optionReply(&out, option: option, type: NBD.Reply.server, payload: p)
            NBDReplyEncoder.optionReply(&out, option: option, type: NBD.Reply.ack)
        case O.info, O.go:
            guard let (name, requests) = Self.parseInfoRequest(&data) else {
                return fail(NBD.Reply.errInvalid, "malformed INFO/GO request")
            }
            guard export.matches(name) else { return fail(NBD.Reply.errUnknown, "no export named '\(name)'") }
            size = worker.virtualSize
            var p = ByteBuffer()
            p.writeInteger(NBD.InfoType.export)
            p.writeInteger(size)
            p.writeInteger(export.transmissionFlags(structuredReplies: structured))
            NBDReplyEncoder.optionReply(&out, option: option, type: NBD.Reply.info, payload: p)
            if requests.contains(NBD.InfoType.name) {
                p.clear()
                p.writeInteger(NBD.InfoType.name)
                p.writeString(export.name)
                NBDReplyEncoder.optionReply(&out, option: option, type: NBD.Reply.info, payload: p)
            }
            if requests.contains(NBD.InfoType.description) {
                p.clear()
                p.writeInteger(NBD.InfoType.description)
                p.writeString(export.description)
                NBDReplyEncoder.optionReply(&out, option: option, type: NBD.Reply.info, payload: p)
            }
            p.clear()
            p.writeInteger(NBD.InfoType.blockSize)
            p.writeInteger(Self.blockSizes.minimum)
            p.writeInteger(Self.blockSizes.preferred)
            p.writeInteger(Self.blockSizes.maximum)
            NBDReplyEncoder.optionReply(&out, option: option, type: NBD.Reply.info, payload: p)
            NBDReplyEncoder.optionReply(&out, option: option, type: NBD.Reply.ack)
            if option == O.go { phase = .transmission }
        case O.structuredReply:
            guard data.readableBytes == 0 else { return fail(NBD.Reply.errInvalid, "STRUCTURED_REPLY takes no data") }
            structured = true
            NBDReplyEncoder.optionReply(&out, option: option, type: NBD.Reply.ack)
        case O.listMetaContext, O.setMetaContext:
            guard let (name, queries) = Self.parseMetaContextRequest(&data) else {
                return fail(NBD.Reply.errInvalid, "malformed meta context request")
            }
            if option == O.setMetaContext && !structured {
                return fail(NBD.Reply.errInvalid, "structured replies were not negotiated")
            }
            guard export.matches(name) else { return fail(NBD.Reply.errUnknown, "no export named '\(name)'") }
            let matched: [NBDMetaContext]
            if option == O.listMetaContext {
                matched = NBDMetaContext.listed(by: queries)
            } else {
                matched = NBDMetaContext.selected(by: queries)
                metaContexts = matched
            }
            for c in matched {
                var p = ByteBuffer()
                p.writeInteger(option == O.setMetaContext ? c.rawValue : 0)
                p.writeString(c.name)
                NBDReplyEncoder.optionReply(&out, option: option, type: NBD.Reply.metaContext, payload: p)
            }
            NBDReplyEncoder.optionReply(&out, option: option, type: NBD.Reply.ack)
        case O.startTLS:
            fail(NBD.Reply.errUnsupported, "TLS is not supported")
        default:
            fail(NBD.Reply.errUnsupported, "option \(option) is not supported")
        }
    }

    /// INFO/GO data: u32 name length, name, u16 count, count × u16 info types — exactly.
    static func parseInfoRequest(_ data: inout ByteBuffer) -> (String, [UInt16])? {
        guard let nameLength = data.readInteger(as: UInt32.self), nameLength <= NBD.maxStringLength,
              let name = data.readString(length: Int(nameLength)),
              let count = data.readInteger(as: UInt16.self), data.readableBytes == 2 * Int(count) else { return nil }
        var types: [UInt16] = []
        for _ in 0..<count { types.append(data.readInteger(as: UInt16.self)!) }
        return (name, types)
    }

    /// *_META_CONTEXT data: u32 name length, name, u32 query count, queries {u32 length, string} — exactly.
    static func parseMetaContextRequest(_ data: inout ByteBuffer) -> (String, [String])? {
        guard let nameLength = data.readInteger(as: UInt32.self), nameLength <= NBD.maxStringLength,
              let name = data.readString(length: Int(nameLength)),
              let count = data.readInteger(as: UInt32.self), UInt64(count) * 4 <= UInt64(data.readableBytes) else { return nil }
        var queries: [String] = []
        for _ in 0..<count {
            guard let l = data.readInteger(as: UInt32.self), l <= NBD.maxStringLength,
                  let q = data.readString(length: Int(l)) else { return nil }
            queries.append(q)
        }
        guard data.readableBytes == 0 else { return nil }
        return (name, queries)
    }
}
