/// The LUN list of a REPORT LUNS answer (SAM-5 §4.7: 8-byte entries after an 8-byte header).
public enum SCSIReportLUNs {
    /// The LUN numbers in `data` (peripheral and flat addressing; other methods are skipped).
    public static func parse(_ data: [UInt8]) -> [Int] {
        guard data.count >= 8 else { return [] }
        let length = Int(data[0]) << 24 | Int(data[1]) << 16 | Int(data[2]) << 8 | Int(data[3])
        var luns: [Int] = []
        var at = 8
        while at + 8 <= min(data.count, 8 + length) {
            let method = data[at] >> 6
            switch method {
            case 0: luns.append(Int(data[at + 1]))                                 // peripheral device addressing
            case 1: luns.append(Int(data[at] & 0x3f) << 8 | Int(data[at + 1]))     // flat space addressing
            default: break
            }
            at += 8
        }
        return luns
    }
}
