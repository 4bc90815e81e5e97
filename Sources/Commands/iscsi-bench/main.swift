import Foundation
import ISCSI
import VHD

/// iscsi-bench: ISCSIStore's throughput on one LUN, for bench/iscsi.sh.
///   iscsi-bench HOST:PORT IQN LUN MODE [--size MiB] [--request KiB] [--threads N] [--seconds S] [--sessions N]
/// MODE: seqwrite, seqread (SIZE MiB from offset 0 in REQUEST-sized calls, THREADS threads each
/// taking the next request), randread, randwrite (REQUEST-sized calls at random aligned offsets
/// within SIZE, for SECONDS). Prints `MODE MiB/s IOPS`.
/// What the threads share: the next sequential offset, the count of calls, the first failure.
final class Progress: @unchecked Sendable {
    private let lock = NSLock()
    private var next: UInt64 = 0
    private var count = 0
    private var error: Error?

    /// The next offset below `size` (nil when done or failed), advancing by `step`.
    func take(_ step: Int, below size: UInt64) -> UInt64? {
        lock.withLock {
            guard next < size, error == nil else { return nil }
            defer { next += UInt64(step) }
            return next
        }
    }
    /// Counts a finished call.
    func done() { lock.withLock { count += 1 } }
    /// Records a failure (the first one wins).
    func fail(_ e: Error) { lock.withLock { if error == nil { error = e } } }
    /// Calls made and the failure, if any.
    var result: (calls: Int, error: Error?) { lock.withLock { (count, error) } }
}

let args = CommandLine.arguments
guard args.count >= 5, let lun = Int(args[3]) else {
    FileHandle.standardError.write(Data("usage: iscsi-bench HOST:PORT IQN LUN seqwrite|seqread|randread|randwrite [--size MiB] [--request KiB] [--threads N] [--seconds S] [--sessions N]\n".utf8))
    exit(2)
}
var options: [String: Int] = ["--size": 1024, "--request": 1024, "--threads": 1, "--seconds": 10, "--sessions": 4]
var i = 5
while i + 1 < args.count {
    guard options[args[i]] != nil, let v = Int(args[i + 1]) else { FileHandle.standardError.write(Data("bad option \(args[i])\n".utf8)); exit(2) }
    options[args[i]] = v
    i += 2
}
let mode = args[4]
let size = UInt64(options["--size"]!) << 20
let request = options["--request"]! << 10
let threads = max(1, options["--threads"]!)
do {
    let portal = try ISCSIPortal(parsing: args[1])
    let target = ISCSITarget(portals: [portal], iqn: args[2], lun: lun, sessionsPerPath: max(options["--sessions"]!, threads))
    let store = ISCSIStore(device: try ISCSIDevice(target: target))
    guard size <= store.size else { throw ISCSIError.lunTooSmall(size: store.size, needed: size) }
    let progress = Progress()
    let deadline = Date().addingTimeInterval(Double(options["--seconds"]!))
    let started = Date()
    DispatchQueue.concurrentPerform(iterations: threads) { t in
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: request, alignment: 4096)
        defer { buffer.deallocate() }
        for k in 0..<request { buffer[k] = UInt8(truncatingIfNeeded: k &* 31 &+ t) }
        var rng = SystemRandomNumberGenerator()
        let slots = size / UInt64(request)
        while true {
            let offset: UInt64
            switch mode {
            case "seqwrite", "seqread":
                guard let o = progress.take(request, below: size) else { return }
                offset = o
            default:
                if Date() > deadline || progress.result.error != nil { return }
                offset = UInt64.random(in: 0..<slots, using: &rng) * UInt64(request)
            }
            do {
                let n = Int(min(UInt64(request), size - offset))
                if mode.hasSuffix("write") {
                    try store.write(UnsafeRawBufferPointer(rebasing: buffer[0..<n]), at: offset)
                } else {
                    try store.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<n]), at: offset)
                }
                progress.done()
            } catch {
                progress.fail(error)
                return
            }
        }
    }
    if mode.hasSuffix("write") { try store.sync() }
    let (calls, failure) = progress.result
    if let failure { throw failure }
    let seconds = Date().timeIntervalSince(started)
    let bytes = Double(calls) * Double(request)
    print(String(format: "%@ %.1f %.0f", mode, bytes / seconds / 1048576, Double(calls) / seconds))
    store.device.close()
} catch {
    FileHandle.standardError.write(Data("iscsi-bench: \(error)\n".utf8))
    exit(1)
}
