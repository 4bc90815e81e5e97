import Foundation

/// The designators of a Device Identification VPD page (0x83, SPC-4 §7.8.6) and the SCSI id
/// Linux's `scsi_id --whitelisted --replace-whitespace` (`scsi_id -g -u`, the name under
/// `/dev/disk/by-scsid/` and XenServer's `SCSIid`) derives from them.
///
/// The rules, as udev's `scsi_id` applies them (written from its documented behaviour; no
/// code carried over):
/// - only designators associated with the logical unit (association 0) count;
/// - they are searched in this order, the first match in page order winning: NAA IEEE
///   Registered Extended (NAA 6) binary, then ASCII; NAA IEEE Registered (NAA 5) binary, then
///   ASCII; any other NAA binary, then ASCII; EUI-64 binary, then ASCII; T10 vendor ID binary,
///   then ASCII; vendor specific binary, then ASCII;
/// - the id is the designator type as one hex digit (`3` NAA, `2` EUI-64, `1` T10 vendor ID,
///   `0` vendor specific) followed by the designator: binary ones as lowercase hex, ASCII ones
///   as they are; a vendor-specific designator is preceded by the 8-byte vendor and 16-byte
///   product of the standard INQUIRY;
/// - `--replace-whitespace` drops leading and trailing white space and turns each run of white
///   space inside into one `_`.
/// Without a usable page 0x83, `scsi_id` falls back to the Unit Serial Number page (0x80):
/// `S` + vendor + product + serial number, white space replaced the same way.
///
/// tgt (1.0.85) lists NAA (type 3) designators first, so its LUNs' ids are `3` + 32 hex digits
/// (an NAA 6 designator of 16 bytes).
public struct SCSIDeviceIdentification: Sendable, Hashable {
    /// One designator of the page.
    public struct Designator: Sendable, Hashable {
        /// Code set: 1 binary, 2 ASCII, 3 UTF-8.
        public var codeSet: Int
        /// Association: 0 logical unit, 1 target port, 2 target device.
        public var association: Int
        /// Designator type: 0 vendor specific, 1 T10 vendor ID, 2 EUI-64, 3 NAA, 8 SCSI name.
        public var type: Int
        /// The designator's bytes.
        public var bytes: [UInt8]
    }

    /// The designators in page order.
    public var designators: [Designator]

    /// Parses page 0x83 (a malformed tail is ignored).
    public init(_ page: [UInt8]) {
        designators = []
        guard page.count >= 4, page[1] == 0x83 else { return }
        let end = min(page.count, 4 + (Int(page[2]) << 8 | Int(page[3])))
        var at = 4
        while at + 4 <= end {
            let length = Int(page[at + 3])
            guard at + 4 + length <= end else { break }
            designators.append(Designator(codeSet: Int(page[at] & 0x0f), association: Int(page[at + 1] >> 4) & 0x3,
                                          type: Int(page[at + 1] & 0x0f), bytes: Array(page[at + 4..<at + 4 + length])))
            at += 4 + length
        }
    }

    /// The id `scsi_id -g -u` prints, from this page and the standard INQUIRY (for the
    /// vendor-specific case); nil when no designator qualifies.
    public func scsiID(inquiry: SCSIStandardInquiry? = nil) -> String? {
        // (type, NAA kind or nil for any, code set)
        let order: [(Int, UInt8?, Int)] = [
            (3, 6, 1), (3, 6, 2), (3, 5, 1), (3, 5, 2), (3, nil, 1), (3, nil, 2),
            (2, nil, 1), (2, nil, 2), (1, nil, 1), (1, nil, 2), (0, nil, 1), (0, nil, 2),
        ]
        for (type, naa, codeSet) in order {
            for d in designators where d.association == 0 && d.type == type && d.codeSet == codeSet && !d.bytes.isEmpty {
                if let naa, d.bytes[0] >> 4 != naa { continue }
                var id = String(type, radix: 16)
                if type == 0 {
                    guard let inquiry else { continue }
                    id += inquiry.vendor + inquiry.product
                }
                if codeSet == 1 {
                    id += d.bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
                } else {
                    id += String(decoding: d.bytes.prefix { $0 != 0 }, as: UTF8.self)
                }
                return Self.replaceWhitespace(id)
            }
        }
        return nil
    }

    /// The fallback id from the Unit Serial Number page (0x80): `S` + vendor + product + serial.
    public static func serialID(unitSerial page: [UInt8], inquiry: SCSIStandardInquiry) -> String? {
        guard page.count >= 4, page[1] == 0x80 else { return nil }
        let length = min(page.count - 4, Int(page[2]) << 8 | Int(page[3]))
        guard length > 0 else { return nil }
        let serial = String(decoding: page[4..<4 + length], as: UTF8.self)
        return replaceWhitespace("S" + inquiry.vendor + inquiry.product + serial)
    }

    /// The unit serial number of page 0x80, trimmed.
    public static func unitSerial(_ page: [UInt8]) -> String {
        guard page.count >= 4, page[1] == 0x80 else { return "" }
        let length = min(page.count - 4, Int(page[2]) << 8 | Int(page[3]))
        return String(decoding: page[4..<4 + max(0, length)], as: UTF8.self).trimmingCharacters(in: .whitespaces)
    }

    /// Leading and trailing white space dropped, each inner run turned into one `_`.
    public static func replaceWhitespace(_ s: String) -> String {
        var out = ""
        var pendingSpace = false
        for ch in s.trimmingCharacters(in: .whitespacesAndNewlines) {
            if ch.isWhitespace { pendingSpace = true; continue }
            if pendingSpace { out.append("_"); pendingSpace = false }
            out.append(ch)
        }
        return out
    }
}
