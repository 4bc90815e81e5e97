import TestSupport
import VHD
@testable import LVM

extension LoopPV {
    /// SHA-less fingerprint of the whole image (for "nothing written" checks).
    func fingerprint() throws -> [UInt8] {
        let s = try store(writable: false)
        var crc: UInt32 = 0
        var buf = [UInt8](repeating: 0, count: 1 << 20)
        var off: UInt64 = 0
        while off < s.size {
            let n = Int(min(UInt64(buf.count), s.size - off))
            try buf.withUnsafeMutableBytes { try s.read(into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<n]), at: off) }
            crc = LVMChecksum.compute(buf, 0..<n, continuing: crc)
            off += UInt64(n)
        }
        return withUnsafeBytes(of: crc.littleEndian) { Array($0) } + withUnsafeBytes(of: s.size.littleEndian) { Array($0) }
    }
}
