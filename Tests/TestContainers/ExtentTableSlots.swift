import Foundation
import VHD

/// Where and how the volume table is committed: two slots in the first extent, each a 512-byte
/// header (magic, sequence number, payload length, checksum) followed by the table's JSON. A
/// commit writes the slot the newest valid table is not in, then syncs; on load the valid slot
/// with the higher sequence number wins. A process killed at any point, or a torn write, thus
/// leaves the old table or the new one, never a mix.
public enum ExtentTableSlots {
    /// The slot header's magic.
    static let magic: [UInt8] = Array("SWSMXTB1".utf8)
    /// Bytes of a slot header.
    public static let headerBytes: UInt64 = 512

    /// Byte offset of slot `index` (0 or 1) in a group of `extentSize`-byte extents.
    public static func offset(of index: Int, extentSize: UInt64) -> UInt64 { UInt64(index) * (extentSize / 2) }

    /// The largest table a slot holds.
    public static func capacity(extentSize: UInt64) -> UInt64 { extentSize / 2 - headerBytes }

    /// The slot a table with sequence number `sequence` goes to.
    public static func index(for sequence: UInt64) -> Int { Int(sequence % 2) }

    /// A slot's bytes: header and payload.
    static func encode(_ payload: [UInt8], sequence: UInt64) -> [UInt8] {
        var header = [UInt8](repeating: 0, count: Int(headerBytes))
        header.replaceSubrange(0..<8, with: magic)
        put(sequence, in: &header, at: 8)
        put(UInt64(payload.count), in: &header, at: 16)
        put(checksum(sequence: sequence, payload: payload), in: &header, at: 24)
        return header + payload
    }

    /// The checksum over sequence number, length and payload.
    static func checksum(sequence: UInt64, payload: [UInt8]) -> UInt64 {
        var fields = [UInt8](repeating: 0, count: 16)
        put(sequence, in: &fields, at: 0)
        put(UInt64(payload.count), in: &fields, at: 8)
        return FNV1a.hash(payload, seed: FNV1a.hash(fields))
    }

    /// The table in slot `index` of the file open as `fd`, with its sequence number; nil when
    /// the slot is empty, torn or garbled.
    static func read(_ fd: Int32, index: Int, extentSize: UInt64) -> (table: ExtentTable, sequence: UInt64)? {
        let at = offset(of: index, extentSize: extentSize)
        guard let header = try? ExtentIO.read(fd, count: Int(headerBytes), at: at), Array(header[0..<8]) == magic else { return nil }
        let sequence = get(header, at: 8), length = get(header, at: 16), sum = get(header, at: 24)
        guard length <= capacity(extentSize: extentSize),
              let payload = try? ExtentIO.read(fd, count: Int(length), at: at + headerBytes),
              checksum(sequence: sequence, payload: payload) == sum,
              let table = try? ExtentTable.decode(payload), table.extentSize == extentSize else { return nil }
        return (table, sequence)
    }

    /// The newest valid table of the file, nil when neither slot holds one.
    static func newest(_ fd: Int32, extentSize: UInt64) -> (table: ExtentTable, sequence: UInt64)? {
        [read(fd, index: 0, extentSize: extentSize), read(fd, index: 1, extentSize: extentSize)]
            .compactMap { $0 }.max { $0.sequence < $1.sequence }
    }

    /// Writes `table` as sequence number `sequence` into its slot and syncs.
    static func write(_ table: ExtentTable, sequence: UInt64, to fd: Int32) throws {
        let payload = try table.encoded()
        guard UInt64(payload.count) <= capacity(extentSize: table.extentSize) else {
            throw VHDError.noSpace(path: table.group, needed: UInt64(payload.count), available: capacity(extentSize: table.extentSize))
        }
        try ExtentIO.write(fd, encode(payload, sequence: sequence), at: offset(of: index(for: sequence), extentSize: table.extentSize))
        try ExtentIO.sync(fd)
    }

    static func put(_ v: UInt64, in b: inout [UInt8], at o: Int) {
        for i in 0..<8 { b[o + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(i))) }
    }

    static func get(_ b: [UInt8], at o: Int) -> UInt64 {
        (0..<8).reduce(0) { $0 | UInt64(b[o + $1]) << (8 * UInt64($1)) }
    }
}
