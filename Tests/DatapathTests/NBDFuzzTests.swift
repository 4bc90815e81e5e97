import Foundation
import SMCore
import Testing
import VHD

/// Seeded random input against the NBD server, in the handshake and in transmission: option
/// and request headers that are nearly right (good magic, random types, flags, offsets and
/// lengths, payloads cut short), then an abrupt close. The server never crashes or hangs, a
/// well-behaved connection opened first keeps reading the right bytes, a read-only export's
/// disk is byte-for-byte unchanged, and a writable one stays a valid VHD.
@Suite struct NBDFuzzTests {
    /// xorshift64*: the same stream for the same seed.
    struct Random {
        var state: UInt64
        init(_ seed: UInt64) { state = seed &* 0x9E37_79B9_7F4A_7C15 | 1 }
        mutating func next() -> UInt64 {
            state ^= state >> 12; state ^= state << 25; state ^= state >> 27
            return state &* 0x2545_F491_4F6C_DD1D
        }
        mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
        mutating func chance(_ percent: Int) -> Bool { below(100) < percent }
        mutating func bytes(_ n: Int) -> [UInt8] { (0..<n).map { _ in UInt8(truncatingIfNeeded: next()) } }
    }

    static let size: UInt64 = 16 << 20

    /// An offset worth trying: inside, at or past the end, or anything.
    static func offset(_ r: inout Random) -> UInt64 {
        switch r.below(5) {
        case 0: return UInt64(r.below(Int(size / 512))) * 512
        case 1: return size - UInt64(r.below(8)) * 512
        case 2: return size + UInt64(r.below(4096))
        case 3: return UInt64(r.below(Int(size)))
        default: return r.next()
        }
    }

    /// A length worth trying: small, sector-sized, around the 32 MiB payload limit, or anything.
    static func length(_ r: inout Random) -> UInt32 {
        switch r.below(5) {
        case 0: return UInt32(r.below(4096))
        case 1: return UInt32(r.below(256) + 1) * 512
        case 2: return UInt32(NBD.maxPayload) + UInt32(r.below(3)) &- 1
        case 3: return 0
        default: return UInt32(truncatingIfNeeded: r.next())
        }
    }

    /// One hostile connection for `seed`: a fuzzed handshake, or a proper one and fuzzed requests.
    static func attack(_ dp: LocalDatapath, seed: UInt64) throws {
        var r = Random(seed)
        let c = try RawNBDClient(dp.directory.nbdSocket)
        // The server may stop reading (back-pressure) while nothing reads its replies.
        var tv = timeval(tv_sec: 1, tv_usec: 0)
        setsockopt(c.fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let options: [UInt32] = [NBD.Option.exportName, NBD.Option.abort, NBD.Option.list, NBD.Option.go, NBD.Option.info,
                                 NBD.Option.structuredReply, NBD.Option.listMetaContext, NBD.Option.setMetaContext, 5, 99]
        if r.chance(40) {
            guard c.read(18) != nil else { return }
            c.send(be(r.chance(70) ? UInt32(r.below(4)) : UInt32(truncatingIfNeeded: r.next())))
            for _ in 0..<r.below(6) + 1 {
                let magic = r.chance(85) ? NBD.ihaveopt : r.next()
                let option = r.chance(80) ? options[r.below(options.count)] : UInt32(truncatingIfNeeded: r.next())
                let declared = r.chance(80) ? UInt32(r.below(64)) : UInt32(truncatingIfNeeded: r.next())
                let data = r.bytes(min(Int(declared), r.below(80)))
                c.send(be(magic) + be(option) + be(declared) + data)
            }
            return
        }
        guard (try? c.negotiate(dp.export, structured: r.chance(70))) != nil else { return }
        for _ in 0..<r.below(12) + 1 {
            let magic = r.chance(92) ? NBD.requestMagic : UInt32(truncatingIfNeeded: r.next())
            let type = UInt16(r.below(12))
            let flags = r.chance(70) ? UInt16(r.below(4)) : UInt16(truncatingIfNeeded: r.next())
            let length = length(&r)
            var payload: [UInt8] = []
            if type == NBD.Command.write {
                payload = r.bytes(r.chance(70) ? min(Int(length), 65536) : r.below(min(Int(length), 65536) + 1))
            }
            c.request(type, flags: flags, cookie: r.next(), offset: offset(&r), length: length, payload: payload, magic: magic)
        }
    }

    /// Runs `seeds` attacks on a datapath over a 16 MiB disk with data in its first 4 MiB,
    /// checking every 25 that a good connection and a real client carry on.
    /// Also returns the whole disk as the good connection read it last.
    func fuzz(readOnly: Bool, seeds: Range<UInt64>) throws
        -> (leaf: String, data: [UInt8], scratch: Scratch, stats: DatapathStats, served: [UInt8]) {
        let s = try Scratch()
        let leaf = try s.dynamicVHD("disk.vhd", mib: 16)
        let data = pattern(4 << 20, seed: 301)
        try s.write(leaf, data, at: 0)
        let dp = try LocalDatapath(s, leaf: leaf, readOnly: readOnly)
        defer { dp.stop() }
        let good = try RawNBDClient(dp.directory.nbdSocket)
        #expect(try good.negotiate(dp.export) == Self.size)
        var cookie: UInt64 = 0
        for seed in seeds {
            try Self.attack(dp, seed: seed)
            if seed % 25 == 24 || seed == seeds.upperBound - 1 {
                cookie += 1
                good.request(NBD.Command.read, cookie: cookie, offset: 0, length: 4 << 20)
                let reply = try #require(good.reply(), "seed \(seed): the good connection got no reply")
                #expect(reply.cookie == cookie && reply.error == 0, "seed \(seed)")
                if readOnly { #expect(Array(reply.payload.dropFirst(8)) == data, "seed \(seed)") }
                let info = try Command.run("nbdinfo", [dp.uri])
                #expect(info.ok && info.stdout.contains("export-size: \(Self.size)"), "seed \(seed)")
            }
        }
        // Every hostile connection is gone (its bytes all parsed) before the last read.
        #expect(try eventually(timeout: 30) { try dp.control.stats().connections == 1 })
        let stats = try dp.control.stats()
        good.request(NBD.Command.read, cookie: cookie + 1, offset: 0, length: UInt32(Self.size))
        let whole = try #require(good.reply(), "the good connection got no reply to the last read")
        return (leaf, data, s, stats, Array(whole.payload.dropFirst(8)))
    }

    @Test func aReadOnlyExportSurvivesAndKeepsItsBytes() throws {
        let (leaf, data, s, stats, _) = try fuzz(readOnly: true, seeds: 0..<400)
        defer { s.remove() }
        #expect(stats.errors > 0, "the fuzz reached the request paths")
        #expect(stats.writes == 0 && stats.trims == 0 && stats.writeZeroes == 0)
        #expect(try s.read(leaf, count: data.count, at: 0) == data)
        #expect(s.problems(leaf).isEmpty)
    }

    @Test func aWritableExportSurvivesAndStaysAValidImage() throws {
        let (leaf, _, s, stats, served) = try fuzz(readOnly: false, seeds: 1000..<1400)
        defer { s.remove() }
        #expect(stats.errors > 0 && stats.writes > 0, "the fuzz reached reads, writes and errors")
        #expect(s.problems(leaf).isEmpty)
        // The engine, reading the files after the datapath stopped, sees what NBD served last.
        #expect(served.count == Int(Self.size))
        #expect(try s.read(leaf, count: Int(Self.size), at: 0) == served)
    }
}
