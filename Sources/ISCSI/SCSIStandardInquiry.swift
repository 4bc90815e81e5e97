/// What a standard INQUIRY says about a LUN (SPC-4 §6.6.2).
public struct SCSIStandardInquiry: Sendable, Hashable {
    /// Peripheral qualifier (0: a device is connected at this LUN).
    public var qualifier: Int
    /// Peripheral device type (0: direct-access block device, 0x0c: storage array controller).
    public var deviceType: Int
    /// T10 vendor identification (8 bytes, trailing spaces kept).
    public var vendor: String
    /// Product identification (16 bytes, trailing spaces kept).
    public var product: String
    /// Product revision level (4 bytes).
    public var revision: String

    /// Parses the answer (short answers leave fields empty).
    public init(_ data: [UInt8]) {
        qualifier = data.isEmpty ? 3 : Int(data[0] >> 5)
        deviceType = data.isEmpty ? 0x1f : Int(data[0] & 0x1f)
        func ascii(_ r: Range<Int>) -> String {
            guard data.count >= r.upperBound else { return "" }
            return String(decoding: data[r], as: UTF8.self)
        }
        vendor = ascii(8..<16)
        product = ascii(16..<32)
        revision = ascii(32..<36)
    }

    /// Whether the LUN is a connected direct-access block device (a disk).
    public var isDisk: Bool { qualifier == 0 && deviceType == 0 }
}
