import ISCSI
import Testing

/// The answers this library parses, from hand-built pages: the SCSI id `scsi_id -g -u` would
/// print for a Device Identification page, capacity, LUN lists, block limits.
@Suite struct SCSIParsingTests {
    /// A designator: code set, association, type, bytes.
    private func designator(_ codeSet: UInt8, _ association: UInt8, _ type: UInt8, _ bytes: [UInt8]) -> [UInt8] {
        [codeSet, association << 4 | type, 0, UInt8(bytes.count)] + bytes
    }

    private func page83(_ designators: [[UInt8]]) -> [UInt8] {
        let body = designators.flatMap { $0 }
        return [0, 0x83, UInt8(body.count >> 8), UInt8(body.count & 0xff)] + body
    }

    private let inquiry = SCSIStandardInquiry([0, 0, 5, 2, 31, 0, 0, 0x02] + Array("IET     ".utf8) + Array("VIRTUAL-DISK    ".utf8) + Array("0001".utf8))

    @Test func naaRegisteredExtendedWinsOverEverythingElse() {
        let naa6: [UInt8] = [0x60, 0x00, 0x0e, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0xbc, 0xde]
        let page = page83([designator(2, 0, 1, Array("IET     T10ID".utf8)),   // T10 vendor, ASCII
                           designator(1, 1, 3, [0x61, 1, 2, 3, 4, 5, 6, 7]),      // NAA, target port: ignored
                           designator(1, 0, 3, [0x52, 1, 2, 3, 4, 5, 6, 7]),      // NAA 5
                           designator(1, 0, 3, naa6)])                           // NAA 6
        let id = SCSIDeviceIdentification(page)
        #expect(id.designators.count == 4)
        #expect(id.scsiID(inquiry: inquiry) == "360000e000102030405060708090abcde")
    }

    @Test func naaRegisteredBeforeOtherNAAAndEUI() {
        let page = page83([designator(1, 0, 2, [1, 2, 3, 4, 5, 6, 7, 8]),
                           designator(1, 0, 3, [0x2a, 0, 0, 0, 0, 0, 0, 1]),
                           designator(1, 0, 3, [0x5a, 0xbc, 0, 0, 0, 0, 0, 2])])
        #expect(SCSIDeviceIdentification(page).scsiID() == "35abc000000000002")
        let noNAA5 = page83([designator(1, 0, 2, [1, 2, 3, 4, 5, 6, 7, 8]), designator(1, 0, 3, [0x2a, 0, 0, 0, 0, 0, 0, 1])])
        #expect(SCSIDeviceIdentification(noNAA5).scsiID() == "32a00000000000001")
        let euiOnly = page83([designator(2, 0, 1, Array("VENDOR  X".utf8)), designator(1, 0, 2, [1, 2, 3, 4, 5, 6, 7, 0xff])])
        #expect(SCSIDeviceIdentification(euiOnly).scsiID() == "201020304050607ff")
    }

    @Test func t10VendorIDWhitespaceBecomesUnderscores() {
        let page = page83([designator(2, 0, 1, Array("IET     00010001".utf8)), designator(2, 2, 8, Array("iqn.x".utf8))])
        #expect(SCSIDeviceIdentification(page).scsiID() == "1IET_00010001")
        #expect(SCSIDeviceIdentification.replaceWhitespace("  a  b \t c  ") == "a_b_c")
    }

    @Test func vendorSpecificIsPrefixedWithVendorAndProduct() {
        let page = page83([designator(1, 0, 0, [0xde, 0xad])])
        #expect(SCSIDeviceIdentification(page).scsiID(inquiry: inquiry) == "0IET_VIRTUAL-DISK_dead")
        #expect(SCSIDeviceIdentification(page83([])).scsiID() == nil)
    }

    @Test func unitSerialFallback() {
        let page: [UInt8] = [0, 0x80, 0, 12] + Array("    beaf11  ".utf8)
        #expect(SCSIDeviceIdentification.serialID(unitSerial: page, inquiry: inquiry) == "SIET_VIRTUAL-DISK_beaf11")
        #expect(SCSIDeviceIdentification.unitSerial(page) == "beaf11")
    }

    @Test func capacityLUNsAndLimits() throws {
        var rc16 = [UInt8](repeating: 0, count: 32)
        rc16[4] = 0x00; rc16[5] = 0x07; rc16[6] = 0xff; rc16[7] = 0xff   // last LBA 0x7ffff
        rc16[10] = 0x02                                                   // 512-byte blocks
        rc16[13] = 3; rc16[14] = 0xC0
        let cap = try #require(SCSICapacity(rc16))
        #expect(cap.blocks == 0x80000 && cap.blockSize == 512 && cap.bytes == 256 << 20)
        #expect(cap.physicalExponent == 3 && cap.thin && cap.unmappedReadZeros)
        #expect(SCSICapacity([0, 1]) == nil)

        let luns: [UInt8] = [0, 0, 0, 24, 0, 0, 0, 0] + [0, 0, 0, 0, 0, 0, 0, 0] + [0, 1, 0, 0, 0, 0, 0, 0] + [0x41, 0x02, 0, 0, 0, 0, 0, 0]
        #expect(SCSIReportLUNs.parse(luns) == [0, 1, 0x102])

        var b0 = [UInt8](repeating: 0, count: 64)
        b0[1] = 0xB0; b0[3] = 60
        b0[10] = 0x08                            // max transfer 2048 blocks
        b0[20...23] = [0xff, 0xff, 0xff, 0xff]   // max unmap LBA count
        b0[27] = 16                              // 16 descriptors
        var b2 = [UInt8](repeating: 0, count: 8)
        b2[1] = 0xB2; b2[5] = 0x80 | 0x04
        let limits = SCSIBlockLimits(blockLimits: b0, provisioning: b2)
        #expect(limits.maximumTransferBlocks == 2048)
        #expect(limits.maximumUnmapBlocks == UInt32.max && limits.maximumUnmapDescriptors == 16)
        #expect(limits.unmapSupported && limits.unmappedReadZeros && !limits.writeSameUnmap)
        #expect(!SCSIBlockLimits(blockLimits: [], provisioning: []).unmapSupported)
    }
}
