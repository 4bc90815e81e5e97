import CISCSI

/// The SCSI commands this library sends, on one connection: each one a libiscsi `*_task` call
/// driven by `ISCSIConnection.runAll`.
extension ISCSIConnection {
    /// REPORT LUNS: the LUN numbers the target exposes to this initiator.
    func reportLUNs() throws -> [Int] {
        var data: [UInt8] = []
        try run(Command(name: "REPORT LUNS", start: { ctx, c in iscsi_reportluns_task(ctx, 0, 16384, ISCSICompletion.callback, c.opaque) },
                        finish: { data = Self.dataIn($0) }))
        return SCSIReportLUNs.parse(data)
    }

    /// Standard INQUIRY of `lun`.
    func inquiry(lun: Int) throws -> SCSIStandardInquiry {
        var data: [UInt8] = []
        try run(Command(name: "INQUIRY", start: { ctx, c in iscsi_inquiry_task(ctx, Int32(lun), 0, 0, 255, ISCSICompletion.callback, c.opaque) },
                        finish: { data = Self.dataIn($0) }))
        return SCSIStandardInquiry(data)
    }

    /// VPD page `page` of `lun` (INQUIRY with EVPD), raw.
    func vpd(lun: Int, page: UInt8) throws -> [UInt8] {
        var data: [UInt8] = []
        try run(Command(name: "INQUIRY VPD 0x\(String(page, radix: 16))",
                        start: { ctx, c in iscsi_inquiry_task(ctx, Int32(lun), 1, Int32(page), 4096, ISCSICompletion.callback, c.opaque) },
                        finish: { data = Self.dataIn($0) }))
        return data
    }

    /// READ CAPACITY(16) of `lun`.
    func readCapacity16(lun: Int) throws -> SCSICapacity {
        var data: [UInt8] = []
        try run(Command(name: "READ CAPACITY(16)", start: { ctx, c in iscsi_readcapacity16_task(ctx, Int32(lun), ISCSICompletion.callback, c.opaque) },
                        finish: { data = Self.dataIn($0) }))
        guard let cap = SCSICapacity(data) else {
            throw ISCSIError.scsi(operation: "READ CAPACITY(16)", status: 0, senseKey: 0, ascq: 0)
        }
        return cap
    }

    /// READ(16) of the blocks at `lba` into `buffer` (a whole number of blocks), split into
    /// commands of at most `maxBlocks` blocks that run together.
    func read(lun: Int, lba: UInt64, into buffer: UnsafeMutableRawBufferPointer, blockSize: Int, maxBlocks: Int) throws {
        let blocks = buffer.count / blockSize
        var commands: [Command] = []
        var done = 0
        while done < blocks {
            let n = min(maxBlocks, blocks - done)
            commands.append(Self.read16(lun: lun, lba: lba + UInt64(done), into: buffer.baseAddress! + done * blockSize,
                                        length: n * blockSize, blockSize: blockSize))
            done += n
        }
        try runAll(commands)
    }

    /// WRITE(16) of `buffer` (a whole number of blocks) at `lba`, split like `read`.
    func write(lun: Int, lba: UInt64, from buffer: UnsafeRawBufferPointer, blockSize: Int, maxBlocks: Int) throws {
        let blocks = buffer.count / blockSize
        var commands: [Command] = []
        var done = 0
        while done < blocks {
            let n = min(maxBlocks, blocks - done)
            commands.append(Self.write16(lun: lun, lba: lba + UInt64(done), from: UnsafeMutableRawPointer(mutating: buffer.baseAddress! + done * blockSize),
                                         length: n * blockSize, blockSize: blockSize))
            done += n
        }
        try runAll(commands)
    }

    /// READ(16) of `length` bytes (whole blocks) at `lba`, the data landing straight in `base`
    /// (an iovec libiscsi fills), which must stay valid until the command ends.
    static func read16(lun: Int, lba: UInt64, into base: UnsafeMutableRawPointer, length: Int, blockSize: Int) -> Command {
        Command(name: "READ(16)", start: { ctx, c in
            let iov = UnsafeMutablePointer<scsi_iovec>.allocate(capacity: 1)
            iov.initialize(to: scsi_iovec(iov_base: base, iov_len: length))
            c.iovec = iov
            return iscsi_read16_iov_task(ctx, Int32(lun), lba, UInt32(length), Int32(blockSize), 0, 0, 0, 0, 0,
                                         ISCSICompletion.callback, c.opaque, iov, 1)
        })
    }

    /// WRITE(16) of `length` bytes (whole blocks) from `base` at `lba`; libiscsi sends them from
    /// there, so they must stay valid until the command ends.
    static func write16(lun: Int, lba: UInt64, from base: UnsafeMutableRawPointer, length: Int, blockSize: Int) -> Command {
        Command(name: "WRITE(16)", start: { ctx, c in
            iscsi_write16_task(ctx, Int32(lun), lba, base.assumingMemoryBound(to: UInt8.self), UInt32(length), Int32(blockSize),
                               0, 0, 0, 0, 0, ISCSICompletion.callback, c.opaque)
        })
    }

    /// SYNCHRONIZE CACHE(16) of the whole LUN.
    func synchronizeCache(lun: Int) throws {
        try run(Command(name: "SYNCHRONIZE CACHE(16)", start: { ctx, c in
            iscsi_synchronizecache16_task(ctx, Int32(lun), 0, 0, 0, 0, ISCSICompletion.callback, c.opaque)
        }))
    }

    /// UNMAP of `ranges` (LBA, block count), at most `perCommand` descriptors a command.
    func unmap(lun: Int, ranges: [(lba: UInt64, blocks: UInt32)], perCommand: Int) throws {
        var commands: [Command] = []
        var i = 0
        while i < ranges.count {
            let part = Array(ranges[i..<min(ranges.count, i + max(1, perCommand))])
            commands.append(Command(name: "UNMAP", start: { ctx, c in
                var list = part.map { unmap_list(lba: $0.lba, num: $0.blocks) }
                return iscsi_unmap_task(ctx, Int32(lun), 0, 0, &list, Int32(list.count), ISCSICompletion.callback, c.opaque)
            }))
            i += part.count
        }
        try runAll(commands)
    }
}
