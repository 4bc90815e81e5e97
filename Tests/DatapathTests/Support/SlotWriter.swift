import Foundation
import Testing

/// A real libnbd client (Python bindings) writing 4 KiB records without pause: write `i` goes to
/// slot `i % slots` and holds (i, slot) repeated; each acknowledged write is logged with the
/// monotonic times it was issued and acknowledged. Stops when the stop file appears, after two
/// million writes (a test whose pauses run slow on a loaded machine must not outlast it), or the
/// connection breaks.
final class SlotWriter {
    static let script = """
    import nbd, os, struct, sys, time
    uri, log, stop, slots = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    h = nbd.NBD()
    h.connect_uri(uri)
    i = 0
    with open(log, "w") as f:
        try:
            while not os.path.exists(stop) and i < 2000000:
                i += 1
                slot = i % slots
                buf = struct.pack(">QQ", i, slot) * 256
                t0 = time.monotonic_ns()
                h.pwrite(buf, slot * 4096)
                t1 = time.monotonic_ns()
                f.write(f"{i} {slot} {t0} {t1}\\n")
                if i % 32 == 0:
                    f.flush()
            h.flush()
            h.shutdown()
        except Exception as e:
            print("writer stopped:", e, file=sys.stderr)
    """

    /// One acknowledged write.
    struct Ack { let i: UInt64; let slot: Int; let issued: UInt64; let acked: UInt64 }

    let process = Process()
    let log: String
    let stop: String
    let slots: Int

    init(uri: String, directory: String, slots: Int) throws {
        log = directory + "/writer.log"
        stop = directory + "/writer.stop"
        self.slots = slots
        let script = directory + "/writer.py"
        try SlotWriter.script.write(toFile: script, atomically: true, encoding: .utf8)
        process.executableURL = URL(fileURLWithPath: Command.python)
        process.arguments = [script, uri, log, stop, String(slots)]
        process.standardInput = FileHandle.nullDevice
        try process.run()
    }

    /// Acknowledged writes logged so far.
    func acks() -> [Ack] {
        guard let text = try? String(contentsOfFile: log, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap { line in
            let f = line.split(separator: " ").compactMap { UInt64($0) }
            return f.count == 4 ? Ack(i: f[0], slot: Int(f[1]), issued: f[2], acked: f[3]) : nil
        }
    }

    /// Waits until at least `count` acknowledgements were logged.
    func waitFor(_ count: Int, timeout: Double = 20) -> Bool {
        eventually(timeout: timeout) { acks().count >= count }
    }

    /// Asks the writer to stop and waits for it.
    func finish(timeout: Double = 20) {
        _ = FileManager.default.createFile(atPath: stop, contents: nil)
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
    }

    /// The record in `bytes` (one slot, 4096 bytes): its write number, 0 for zeros; nil when torn.
    static func record(_ bytes: ArraySlice<UInt8>, slot: Int) -> UInt64? {
        if bytes.allSatisfy({ $0 == 0 }) { return 0 }
        let b = Array(bytes)
        let i = be64(b, 0)
        guard be64(b, 8) == UInt64(slot) else { return nil }
        for k in stride(from: 16, to: 4096, by: 16) where be64(b, k) != i || be64(b, k + 8) != UInt64(slot) { return nil }
        return i
    }
}
