import NIOCore
import VHD
#if canImport(Glibc)
import Glibc
#endif

/// The NBD commands as operations on an open `VHDChain`; run only on the chain thread.
enum ChainIO {
    /// Longest range one BLOCK_STATUS reply describes (clients ask again for the rest); keeps
    /// every extent length below 2^32.
    static let maxStatusRange: UInt64 = 1 << 31
    /// Most extents in one BLOCK_STATUS reply.
    static let maxExtents = 1 << 16
    /// Size of the zero buffer WRITE_ZEROES writes from.
    static let zeroChunk = 1 << 20
    /// Shared, never-written zeros.
    nonisolated(unsafe) static let zeros: UnsafeRawBufferPointer = {
        let p = UnsafeMutableRawBufferPointer.allocate(byteCount: zeroChunk, alignment: 4096)
        p.initializeMemory(as: UInt8.self, repeating: 0)
        return UnsafeRawBufferPointer(p)
    }()

    /// READ: one buffer for the whole request, `headerRoom` bytes reserved in front for the reply.
    static func read(_ chain: VHDChain, offset: UInt64, length: Int, headerRoom: Int) throws -> NBDCommandResult {
        var buffer = ByteBufferAllocator().buffer(capacity: headerRoom + length)
        buffer.moveWriterIndex(forwardBy: headerRoom)
        try buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: length) { ptr in
            try chain.read(into: UnsafeMutableRawBufferPointer(rebasing: ptr[0..<length]), at: offset)
            return length
        }
        return .data(buffer, headerRoom: headerRoom)
    }

    /// WRITE (then a flush with FUA).
    static func write(_ chain: VHDChain, _ payload: ByteBuffer, offset: UInt64, fua: Bool) throws -> NBDCommandResult {
        try payload.withUnsafeReadableBytes { try chain.write($0, at: offset) }
        if fua { try chain.flush() }
        return .done
    }

    /// WRITE_ZEROES: ranges that no image of the chain holds already read as zeros and are left
    /// alone (keeps the VHD sparse) unless NO_HOLE asks for the range to be allocated. The
    /// zeros written are then punched out of the leaf file (whole 4 KiB pages, as TRIM does),
    /// which NBD allows without NO_HOLE: they read as zeros all the same and take no space.
    static func writeZeroes(_ chain: VHDChain, offset: UInt64, length: UInt64, noHole: Bool, fua: Bool) throws -> NBDCommandResult {
        let ranges: [Range<UInt64>]
        if noHole {
            ranges = [offset..<offset + length]
        } else {
            ranges = try AllocationMap.extents(chain, in: offset..<offset + length)
                .filter(\.allocated).map { $0.offset..<$0.offset + $0.length }
        }
        for r in ranges {
            var at = r.lowerBound
            while at < r.upperBound {
                let n = Int(min(UInt64(zeroChunk), r.upperBound - at))
                try chain.write(UnsafeRawBufferPointer(rebasing: zeros[0..<n]), at: at)
                at += UInt64(n)
            }
            if !noHole { try chain.discard(offset: r.lowerBound, length: UInt64(r.count)) }
        }
        if fua { try chain.flush() }
        return .done
    }

    /// TRIM: punches holes in the leaf file's data areas under the range (`VHDChain.discard`):
    /// sectors the leaf holds read as zeros where a whole 4 KiB page was punched, the others
    /// still read from the parents, and no metadata changes; a leaf whose store cannot punch
    /// keeps its data. Then a flush with FUA.
    static func trim(_ chain: VHDChain, offset: UInt64, length: UInt64, fua: Bool) throws -> NBDCommandResult {
        try chain.discard(offset: offset, length: length)
        if fua { try chain.flush() }
        return .done
    }

    /// BLOCK_STATUS for each of `contexts`: for `base:allocation`, allocated anywhere in the
    /// chain → 0 (data), else 3 (hole, reads as zeros); for `qemu:allocation-depth`, the depth
    /// of the image each range reads from. At most `maxStatusRange` bytes and `maxExtents`
    /// extents per context; one extent with REQ_ONE. Extents never run past the request.
    static func blockStatus(_ chain: VHDChain, offset: UInt64, length: UInt64, reqOne: Bool,
                            contexts: [NBDMetaContext]) throws -> NBDCommandResult {
        let end = offset + min(length, maxStatusRange)
        return .status(try contexts.map { context in
            let runs: [(length: UInt64, value: UInt32)]
            switch context {
            case .baseAllocation:
                runs = try AllocationMap.extents(chain, in: offset..<end).map { ($0.length, $0.allocated ? 0 : NBD.stateHole | NBD.stateZero) }
            case .allocationDepth:
                runs = try AllocationDepth.extents(chain, in: offset..<end).map { ($0.length, $0.depth) }
            }
            var out: [(length: UInt32, flags: UInt32)] = []
            out.reserveCapacity(min(runs.count, maxExtents))
            for r in runs {
                out.append((UInt32(r.length), r.value))
                if reqOne || out.count == maxExtents { break }
            }
            if out.isEmpty { out.append((UInt32(end - offset), 0)) }
            return (context, out)
        })
    }

    /// The NBD error number for an engine failure.
    static func errno(for error: Error) -> UInt32 {
        switch error {
        case let e as VHDError:
            switch e {
            case .noSpace: return NBD.Errno.enospc
            case .readOnly: return NBD.Errno.eperm
            case .outOfRange: return NBD.Errno.einval
            case let .io(_, _, e) where e == ENOSPC || e == EDQUOT || e == EFBIG: return NBD.Errno.enospc
            default: return NBD.Errno.eio
            }
        default: return NBD.Errno.eio
        }
    }
}
