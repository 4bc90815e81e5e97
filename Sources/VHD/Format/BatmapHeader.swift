/// blktap's batmap header ("tdbatmap"), right after the BAT: one bit per fully allocated block.
public struct BatmapHeader: Equatable, Sendable {
    /// The cookie.
    public static let cookie: [UInt8] = Array("tdbatmap".utf8)
    /// The version blktap writes (1.2).
    public static let currentVersion: UInt32 = 0x0001_0002

    /// Absolute offset of the map.
    public var mapOffset: UInt64
    /// Sectors reserved for the map.
    public var mapSectors: UInt32
    /// Version.
    public var version: UInt32
    /// Checksum over the first `mapSize` bytes of the map.
    public var checksum: UInt32
    /// Generic marker byte (`vhd-util set -f marker`).
    public var marker: UInt8
    /// Keyhash cookie (1 when a key hash is set).
    public var keyhashCookie: UInt8
    /// Keyhash nonce.
    public var keyhashNonce: [UInt8]
    /// Keyhash hash.
    public var keyhashHash: [UInt8]

    /// A header for a new map at `mapOffset` of `mapSectors` sectors.
    public init(mapOffset: UInt64, mapSectors: UInt32) {
        self.mapOffset = mapOffset
        self.mapSectors = mapSectors
        version = BatmapHeader.currentVersion
        checksum = 0
        marker = 0
        keyhashCookie = 0
        keyhashNonce = [UInt8](repeating: 0, count: 32)
        keyhashHash = [UInt8](repeating: 0, count: 32)
    }

    /// Decodes a header sector; nil if the cookie is wrong.
    public static func decode(_ b: [UInt8]) -> BatmapHeader? {
        guard b.count >= 512, b.bytes(0, 8) == cookie else { return nil }
        var h = BatmapHeader(mapOffset: b.be64(8), mapSectors: b.be32(16))
        h.version = b.be32(20)
        h.checksum = b.be32(24)
        h.marker = b[28]
        h.keyhashCookie = b[29]
        h.keyhashNonce = b.bytes(30, 32)
        h.keyhashHash = b.bytes(62, 32)
        return h
    }

    /// The 512-byte sector (reserved bytes zeroed).
    public func encoded() -> [UInt8] {
        var b = [UInt8](repeating: 0, count: 512)
        b.put(BatmapHeader.cookie, at: 0)
        b.setBE64(mapOffset, at: 8)
        b.setBE32(mapSectors, at: 16)
        b.setBE32(version, at: 20)
        b.setBE32(checksum, at: 24)
        b[28] = marker
        b[29] = keyhashCookie
        b.put(keyhashNonce, at: 30)
        b.put(keyhashHash, at: 62)
        return b
    }

    /// Bytes of map blktap reads, writes and checksums for a disk of `currentSize` bytes.
    public static func mapSize(currentSize: UInt64) -> Int {
        512 * max(1, Int(((currentSize >> 24) + 511) / 512))
    }

    /// Sectors blktap reserves for `entries` BAT entries.
    public static func sectors(forEntries entries: UInt32) -> UInt32 {
        max(1, UInt32((UInt64(entries + 7) / 8 + 511) / 512))
    }

    /// The batmap checksum of `map` over its first `count` bytes.
    public static func checksum(_ map: [UInt8], count: Int) -> UInt32 {
        var sum: UInt32 = 0
        for i in 0..<min(count, map.count) { sum &+= UInt32(map[i]) }
        return ~sum
    }
}
