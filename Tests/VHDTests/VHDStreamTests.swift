import Foundation
import Testing
@testable import VHD

/// VHD streams written front to back (`VHDStreamLayout`) and read front to back
/// (`VHDStreamReader`): what the layout writes, the engine and `Check` read as the same disk;
/// what the reader takes apart gives back every block; what cannot be streamed or is cut short
/// is refused.
@Suite struct VHDStreamTests {
    /// Bytes handed out in small, uneven pieces, as a network delivers them.
    final class PieceSource: VHDStreamSource {
        let bytes: [UInt8]
        var at = 0
        init(_ bytes: [UInt8]) { self.bytes = bytes }
        func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
            let n = min(buffer.count, bytes.count - at, 1000 + at % 3001)
            guard n > 0 else { return 0 }
            bytes.withUnsafeBytes { buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[at..<at + n])) }
            at += n
            return n
        }
    }

    static let size: UInt64 = 9 << 20   // 4.5 blocks: the last block is partly past the end

    /// The block's data: a pattern of its index (zeros past the virtual size).
    static func data(_ b: Int) -> [UInt8] {
        let bs = Int(DynamicHeader.defaultBlockSize)
        return (0..<bs).map { i in UInt64(b * bs + i) < size ? UInt8((b * 31 + i / 512) & 0xff) : 0 }
    }

    static func stream(blocks: [Int], parent: VHDStreamLayout.Parent? = nil, uuid: VHDUUID = .random()) throws -> (VHDStreamLayout, [UInt8]) {
        let layout = try VHDStreamLayout(virtualSize: size, blocks: blocks, uuid: uuid, parent: parent)
        var out = layout.prefix
        for b in layout.blocks { out += layout.blockHead + data(b) }
        out += layout.footer
        return (layout, out)
    }

    @Test func aDynamicStreamIsTheDiskForTheEngineAndPassesCheck() throws {
        let (layout, bytes) = try Self.stream(blocks: [4, 0, 2])
        #expect(UInt64(bytes.count) == layout.length)
        let p = MemoryStoreProvider()
        p.add(MemoryStore(bytes: bytes), at: "/s/d.vhd")
        #expect(Check.run(path: "/s/d.vhd", provider: p).allValid)
        let chain = try VHDChain(path: "/s/d.vhd", provider: p)
        let bs = Int(DynamicHeader.defaultBlockSize)
        for b in 0..<5 {
            let n = min(bs, Int(Self.size) - b * bs)
            let expected = [0, 2, 4].contains(b) ? Array(Self.data(b)[0..<n]) : [UInt8](repeating: 0, count: n)
            #expect(try chain.read(count: n, at: UInt64(b * bs)) == expected, "block \(b)")
        }
        // Every block's data is 4 KiB-aligned in the file.
        let image = try VHDImage(store: p.open("/s/d.vhd", writable: false), path: "/s/d.vhd", writable: false)
        for b in [0, 2, 4] { #expect((UInt64(image.entry(b)) * 512 + 512) % 4096 == 0) }
    }

    @Test func theReaderGivesBackEveryBlockInStreamOrderFromUnevenPieces() throws {
        let (_, bytes) = try Self.stream(blocks: [3, 1])
        let reader = try VHDStreamReader(source: PieceSource(bytes))
        #expect(reader.virtualSize == Self.size && !reader.isDifferencing && reader.blocks == [1, 3])
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: reader.blockSize, alignment: 8)
        defer { buffer.deallocate() }
        var seen: [Int] = []
        while let (b, bitmap) = try reader.nextBlock(into: buffer) {
            seen.append(b)
            #expect(Array(buffer) == Self.data(b))
            #expect(bitmap.allSatisfy { $0 == 0xff })
        }
        #expect(seen == [1, 3])
    }

    @Test func aDifferencingStreamNamesItsParentAndReadsOverIt() throws {
        let p = MemoryStoreProvider()
        let parentUUID = VHDUUID.random()
        let (_, base) = try Self.stream(blocks: [0, 1, 2, 3, 4], uuid: parentUUID)
        p.add(MemoryStore(bytes: base), at: "/s/base.vhd")
        let (_, child) = try Self.stream(blocks: [1], parent: .init(uuid: parentUUID, relativePath: "./base.vhd"))
        p.add(MemoryStore(bytes: child), at: "/s/child.vhd")
        #expect(Check.run(path: "/s/child.vhd", provider: p).allValid)
        let chain = try VHDChain(path: "/s/child.vhd", provider: p)
        #expect(chain.images.count == 2)
        let reader = try VHDStreamReader(source: PieceSource(child))
        #expect(reader.isDifferencing && reader.blocks == [1])
    }

    @Test func whatCannotBeStreamedOrIsCutShortIsRefused() throws {
        let (_, bytes) = try Self.stream(blocks: [0, 2])
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 2 << 20, alignment: 8)
        defer { buffer.deallocate() }
        func drain(_ b: [UInt8]) throws {
            let reader = try VHDStreamReader(source: PieceSource(b))
            while try reader.nextBlock(into: buffer) != nil {}
        }
        try drain(bytes)   // the whole stream reads
        // Cut in a block, or just before the closing footer.
        #expect(throws: VHDError.self) { try drain(Array(bytes[0..<(bytes.count - 600_000)])) }
        #expect(throws: VHDError.self) { try drain(Array(bytes[0..<(bytes.count - 512)])) }
        // A header checksum that does not hold.
        var bad = bytes
        bad[512 + 100] ^= 1
        #expect(throws: VHDError.self) { try drain(bad) }
        // Two BAT entries at one place.
        var overlap = bytes
        let table = 1536
        overlap.replaceSubrange(table + 4..<table + 8, with: overlap[table..<table + 4])
        #expect(throws: VHDError.self) { try drain(overlap) }
        // A BAT placed before the header (valid on disk, not streamable): the header moved to the end.
        var late = [UInt8](repeating: 0, count: bytes.count + 1024)
        late.replaceSubrange(0..<bytes.count, with: bytes)
        var footer = try Footer.decode(Array(bytes[0..<512])).get()
        footer.dataOffset = UInt64(bytes.count)
        late.replaceSubrange(0..<512, with: footer.encoded())
        late.replaceSubrange(bytes.count..<bytes.count + 1024, with: bytes[512..<1536])
        #expect(throws: VHDError.self) { try drain(late) }
        // Tiny blocks on a huge disk: a BAT of gigabytes is refused before it is read.
        var tiny = bytes
        var f2 = try Footer.decode(Array(bytes[0..<512])).get()
        f2.currentSize = 1 << 40
        tiny.replaceSubrange(0..<512, with: f2.encoded())
        var h2 = try DynamicHeader.decode(Array(bytes[512..<1536])).get()
        h2.blockSize = 4096
        h2.maxTableEntries = UInt32((1 << 40) / 4096)
        tiny.replaceSubrange(512..<1536, with: h2.encoded())
        #expect { try drain(tiny) } throws: { "\($0)".contains("BAT entries") }
        // Not a VHD at all.
        #expect(throws: VHDError.self) { try drain([UInt8](repeating: 0, count: 4096)) }
    }
}
