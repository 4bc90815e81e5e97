import Foundation
import SMCore
import Testing
import VHD

/// A guest on a VDI's data path (libnbd's Python binding): writes 64 KiB blocks, flushing every
/// 16, for a while, then reads back what was acknowledged; the outage tests run it while they
/// take the storage server away.
enum NBDGuest {
    /// The guest: writes for `seconds`, then reads back every block it got acknowledged and
    /// prints a JSON summary (`acked` maps offsets to the block's number, whose bytes are
    /// `(n + i) % 251` repeated).
    static let script = #"""
import nbd, sys, time, json
sock, export, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
h = nbd.NBD(); h.connect_uri(f"nbd+unix:///{export}?socket={sock}")
blk = 64 << 10; n = 0; acked = {}; pending = {}; errors = 0; maxlat = 0.0
def block(n): return bytes([(n + i) % 251 for i in range(256)]) * (blk // 256)
end = time.time() + seconds
while time.time() < end:
    off = (n * 7919 % 512) * blk
    t = time.time()
    try:
        h.pwrite(block(n), off); pending[off] = n
        if n % 16 == 15:
            h.flush(); acked.update(pending); pending = {}
    except Exception as e:
        errors += 1; pending = {}
    maxlat = max(maxlat, time.time() - t); n += 1
try:
    h.flush(); acked.update(pending)
except Exception:
    errors += 1
bad = [off for off, k in acked.items() if h.pread(blk, off) != block(k)]
print(json.dumps({"writes": n, "errors": errors, "mismatches": len(bad), "maxlat": maxlat,
                  "acked": {str(o): k for o, k in acked.items()}}))
"""#

    /// What the guest printed.
    struct Report: Decodable {
        var writes: Int
        var errors: Int
        var mismatches: Int
        var maxlat: Double
        var acked: [String: Int]
    }

    /// Runs the guest for `seconds` against VDI `v` while `during` runs; returns its report.
    static func run(_ sr: TestSR, _ v: String, seconds: Double, during: () throws -> Void) throws -> Report {
        let dir = DatapathDirectory(run: RunDirectory(root: sr.runDir), sr: sr.srUUID, vdi: v)
        let file = sr.root + "/guest.py", out = sr.root + "/guest.json"
        try script.write(toFile: file, atomically: true, encoding: .utf8)
        let guest = try Spawned(["/usr/bin/python3", file, dir.nbdSocket, v, String(seconds)], output: out)
        do { try during() } catch { kill(guest.pid, SIGKILL); _ = guest.wait(); throw error }
        let status = guest.wait()
        let text = try String(contentsOfFile: out, encoding: .utf8)
        #expect(status == 0, "the guest: \(text.suffix(1000))")
        return try JSONDecoder().decode(Report.self, from: Data(text.utf8))
    }

    /// The data path's stats of VDI `v`.
    static func stats(_ sr: TestSR, _ v: String) throws -> DatapathStats {
        try DatapathControlClient(socketPath: DatapathDirectory(run: RunDirectory(root: sr.runDir), sr: sr.srUUID, vdi: v).controlSocket,
                                  timeout: 5).stats()
    }

    /// Every block the guest got acknowledged is in VDI `v`'s VHD chain, read with the library
    /// (the VDI deactivated), and the tree checks clean.
    static func expectAcknowledgedBlocks(_ report: Report, in sr: TestSR, _ v: String,
                                         sourceLocation: SourceLocation = #_sourceLocation) throws {
        let chain = try VHDChain(path: sr.path(v), provider: sr.provider)
        for (offset, n) in report.acked {
            let expected = (0..<(64 << 10)).map { UInt8((n + $0 % 256) % 251) }
            #expect(try chain.read(count: 64 << 10, at: UInt64(offset)!) == expected, "block at \(offset)", sourceLocation: sourceLocation)
        }
        #expect(sr.treeProblems().isEmpty, "\(sr.treeProblems())", sourceLocation: sourceLocation)
    }
}
