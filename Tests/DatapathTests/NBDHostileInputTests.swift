import Foundation
import SMCore
import Testing
import VHD

/// Bad input gets an error reply or a closed connection; the server survives and other
/// clients carry on.
@Suite struct NBDHostileInputTests {
    /// A 16 MiB disk with data at 0; a well-behaved connection opened first (checked last).
    struct Fixture {
        let s: Scratch
        let dp: LocalDatapath
        let data: [UInt8]
        let good: RawNBDClient

        init() throws {
            s = try Scratch()
            let leaf = try s.dynamicVHD("disk.vhd", mib: 16)
            data = pattern(1 << 20, seed: 21)
            try s.write(leaf, data, at: 0)
            dp = try LocalDatapath(s, leaf: leaf)
            good = try RawNBDClient(dp.directory.nbdSocket)
            #expect(try good.negotiate(dp.export) == 16 << 20)
        }

        /// The good connection still reads correctly and a real client still works.
        func othersCarryOn(sourceLocation: SourceLocation = #_sourceLocation) throws {
            good.request(NBD.Command.read, cookie: 77, offset: 4096, length: 4096)
            let r = try #require(good.reply(), sourceLocation: sourceLocation)
            #expect(r.cookie == 77 && r.error == 0 && Array(r.payload.dropFirst(8)) == Array(data[4096..<8192]),
                    sourceLocation: sourceLocation)
            let info = try Command.run("nbdinfo", [dp.uri])
            #expect(info.ok && info.stdout.contains("export-size: 16777216"), sourceLocation: sourceLocation)
        }

        func done() { dp.stop(); s.remove() }
    }

    @Test func malformedHandshakesCloseOnlyThatConnection() throws {
        let f = try Fixture(); defer { f.done() }
        let badFlags = try RawNBDClient(f.dp.directory.nbdSocket)
        try badFlags.greet(flags: 0x80)
        #expect(badFlags.closedByServer())
        let badMagic = try RawNBDClient(f.dp.directory.nbdSocket)
        try badMagic.greet()
        badMagic.option(NBD.Option.list, magic: 0x1122_3344_5566_7788)
        #expect(badMagic.closedByServer())
        let garbage = try RawNBDClient(f.dp.directory.nbdSocket)
        _ = garbage.read(18)
        garbage.send(pattern(4096, seed: 1))
        #expect(garbage.closedByServer())
        let unknownExport = try RawNBDClient(f.dp.directory.nbdSocket)
        try unknownExport.greet()
        unknownExport.option(NBD.Option.exportName, Array("nope".utf8))
        #expect(unknownExport.closedByServer())
        let silent = try RawNBDClient(f.dp.directory.nbdSocket)
        _ = silent.read(10)               // half the greeting, then vanish
        try f.othersCarryOn()
    }

    @Test func unknownAndMalformedOptionsGetErrorsAndParsingGoesOn() throws {
        let f = try Fixture(); defer { f.done() }
        let c = try RawNBDClient(f.dp.directory.nbdSocket)
        try c.greet()
        c.option(99, pattern(100, seed: 2))
        #expect(c.optionReply()?.type == NBD.Reply.errUnsupported)
        c.option(NBD.Option.startTLS)
        #expect(c.optionReply()?.type == NBD.Reply.errUnsupported)
        c.option(NBD.Option.list, [1, 2, 3])
        #expect(c.optionReply()?.type == NBD.Reply.errInvalid)
        c.option(NBD.Option.go, be(UInt32(50)) + Array("short".utf8))
        #expect(c.optionReply()?.type == NBD.Reply.errInvalid)
        c.option(NBD.Option.info, be(UInt32(5)) + Array("other".utf8) + be(UInt16(0)))
        #expect(c.optionReply()?.type == NBD.Reply.errUnknown)
        let q = Array(NBD.baseAllocation.utf8)
        c.option(NBD.Option.setMetaContext, be(UInt32(0)) + be(UInt32(1)) + be(UInt32(q.count)) + q)
        #expect(c.optionReply()?.type == NBD.Reply.errInvalid, "SET_META_CONTEXT needs structured replies")
        c.option(NBD.Option.structuredReply, [0])
        #expect(c.optionReply()?.type == NBD.Reply.errInvalid)
        c.option(NBD.Option.list, pattern(200_000, seed: 3))      // oversized: skipped, refused
        #expect(c.optionReply()?.type == NBD.Reply.errTooBig)
        c.option(NBD.Option.listMetaContext, be(UInt32(0)) + be(UInt32(0)))
        for name in [NBD.baseAllocation, "qemu:allocation-depth"] {
            let listed = try #require(c.optionReply())
            #expect(listed.type == NBD.Reply.metaContext && String(decoding: listed.data.dropFirst(4), as: UTF8.self) == name)
        }
        #expect(c.optionReply()?.type == NBD.Reply.ack)
        c.option(NBD.Option.list)
        let server = try #require(c.optionReply())
        #expect(server.type == NBD.Reply.server)
        #expect(String(decoding: server.data[4..<(4 + Int(be32(server.data, 0)))], as: UTF8.self) == f.dp.export)
        #expect(c.optionReply()?.type == NBD.Reply.ack)
        c.option(NBD.Option.abort)
        #expect(c.optionReply()?.type == NBD.Reply.ack)
        #expect(c.closedByServer())
        try f.othersCarryOn()
    }

    @Test func legacyExportNameStartsTransmission() throws {
        let f = try Fixture(); defer { f.done() }
        let c = try RawNBDClient(f.dp.directory.nbdSocket)
        try c.greet(flags: 1)                  // fixed newstyle without NO_ZEROES: 124 zeros follow
        c.option(NBD.Option.exportName, Array(f.dp.export.utf8))
        let reply = try #require(c.read(8 + 2 + 124))
        #expect(be64(reply, 0) == 16 << 20)
        #expect(reply[10...].allSatisfy { $0 == 0 })
        c.request(NBD.Command.read, cookie: 5, offset: 0, length: 512)
        let r = try #require(c.reply(readLength: 512))
        #expect(r.error == 0 && r.payload == Array(f.data[0..<512]))
    }

    @Test func badRequestsGetTheReferenceErrors() throws {
        let f = try Fixture(); defer { f.done() }
        let c = try RawNBDClient(f.dp.directory.nbdSocket)
        let size = try c.negotiate(f.dp.export)
        typealias C = NBD.Command
        func expectError(_ type: UInt16, flags: UInt16 = 0, offset: UInt64, length: UInt32, payload: [UInt8] = [],
                         _ error: UInt32, sourceLocation: SourceLocation = #_sourceLocation) {
            c.request(type, flags: flags, cookie: 1000 + UInt64(type), offset: offset, length: length, payload: payload)
            let r = c.reply()
            #expect(r?.cookie == 1000 + UInt64(type) && r?.error == error, "type \(type): \(String(describing: r))",
                    sourceLocation: sourceLocation)
        }
        expectError(C.read, offset: size - 512, length: 1024, NBD.Errno.einval)
        expectError(C.read, offset: UInt64.max - 10, length: 512, NBD.Errno.einval)
        expectError(C.write, offset: size, length: 512, payload: pattern(512, seed: 1), NBD.Errno.enospc)
        expectError(C.writeZeroes, offset: size - 4096, length: 8192, NBD.Errno.enospc)
        expectError(C.trim, offset: size, length: 4096, NBD.Errno.einval)
        expectError(C.blockStatus, offset: size, length: 4096, NBD.Errno.einval)
        expectError(C.read, offset: 0, length: UInt32(NBD.maxPayload + 4096), NBD.Errno.einval)
        expectError(C.write, offset: 0, length: UInt32(NBD.maxPayload + 512), payload: [UInt8](repeating: 7, count: NBD.maxPayload + 512),
                    NBD.Errno.einval)
        expectError(99, offset: 0, length: 0, NBD.Errno.einval)
        expectError(C.read, flags: 0x400, offset: 0, length: 512, NBD.Errno.einval)
        expectError(C.writeZeroes, flags: NBD.CommandFlag.fastZero, offset: 0, length: 4096, NBD.Errno.enotsup)
        // Nothing of the refused writes reached the disk, and the connection still works.
        c.request(C.read, cookie: 9, offset: 0, length: 4096)
        let r = try #require(c.reply())
        #expect(r.error == 0 && Array(r.payload.dropFirst(8)) == Array(f.data[0..<4096]))
        // BLOCK_STATUS without a selected context is refused.
        let plain = try RawNBDClient(f.dp.directory.nbdSocket)
        _ = try plain.negotiate(f.dp.export, metaContext: false)
        plain.request(C.blockStatus, cookie: 3, offset: 0, length: 4096)
        #expect(plain.reply()?.error == NBD.Errno.einval)
        // A request with a bad magic ends that connection.
        c.request(C.read, cookie: 10, offset: 0, length: 512, magic: 0xdead_beef)
        #expect(c.closedByServer())
        try f.othersCarryOn()
        #expect(!f.dp.datapath.isClosed)
    }

    @Test func clientsVanishingMidRequest() throws {
        let f = try Fixture(); defer { f.done() }
        for i in 0..<4 {
            let c = try RawNBDClient(f.dp.directory.nbdSocket)
            _ = try c.negotiate(f.dp.export)
            switch i {
            case 0:   // half a write payload
                c.request(NBD.Command.write, cookie: 1, offset: 1 << 20, length: 1 << 20, payload: pattern(300_000, seed: 5))
            case 1:   // a big read never read back
                c.request(NBD.Command.read, cookie: 2, offset: 0, length: UInt32(NBD.maxPayload))
            case 2:   // half a request header
                c.send([0x25, 0x60, 0x95, 0x13, 0, 0, 0])
            default:  // many pipelined reads
                for k in 0..<64 { c.request(NBD.Command.read, cookie: UInt64(k), offset: UInt64(k) * 65536, length: 65536) }
            }
        }   // each client is closed here
        usleep(200_000)
        try f.othersCarryOn()
        // The half-sent write never happened.
        f.good.request(NBD.Command.read, cookie: 8, offset: 1 << 20, length: 4096)
        #expect(f.good.reply()?.payload.dropFirst(8).allSatisfy { $0 == 0 } == true)
        #expect(try eventually { try f.dp.control.stats().connections == 1 })
    }
}
