import Foundation

/// A real NBD client (libnbd's Python bindings) writing 4 KiB records without pause: write `i`
/// goes to slot `i % slots` and holds (i, slot) repeated; every acknowledged write is logged.
/// Stops when the stop file appears or the connection breaks.
final class SlotWriter: @unchecked Sendable {
    static let script = """
    import nbd, os, struct, sys
    uri, log, stop, slots = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    h = nbd.NBD()
    h.connect_uri(uri)
    i = 0
    with open(log, "w") as f:
        try:
            while not os.path.exists(stop) and i < 1000000:
                i += 1
                slot = i % slots
                h.pwrite(struct.pack(">QQ", i, slot) * 256, slot * 4096)
                f.write(f"{i} {slot}\\n")
                if i % 16 == 0:
                    f.flush()
            h.flush()
            h.shutdown()
        except Exception as e:
            print("writer stopped:", e, file=sys.stderr)
    """

    let process = Process()
    let log: String
    let stop: String
    let slots: Int

    /// Starts writing to `uri`, logging into `directory`.
    init(uri: String, directory: String, slots: Int) throws {
        log = directory + "/writer.log"
        stop = directory + "/writer.stop"
        self.slots = slots
        let script = directory + "/writer.py"
        try Self.script.write(toFile: script, atomically: true, encoding: .utf8)
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = [script, uri, log, stop, String(slots)]
        process.standardInput = FileHandle.nullDevice
        try process.run()
    }

    /// The last acknowledged write of every slot (0: none), from the log so far.
    func lastAcked() -> [UInt64] {
        var last = [UInt64](repeating: 0, count: slots)
        guard let text = try? String(contentsOfFile: log, encoding: .utf8) else { return last }
        for line in text.split(separator: "\n") {
            let f = line.split(separator: " ").compactMap { UInt64($0) }
            if f.count == 2, Int(f[1]) < slots { last[Int(f[1])] = max(last[Int(f[1])], f[0]) }
        }
        return last
    }

    /// Writes acknowledged so far.
    var count: UInt64 { lastAcked().max() ?? 0 }

    /// Waits until at least `n` writes were acknowledged.
    func waitFor(_ n: UInt64, timeout: Double = 30) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if count >= n { return true }
            usleep(20_000)
        }
        return count >= n
    }

    /// Asks the writer to stop and waits for it (killing it after `timeout` seconds).
    func finish(timeout: Double = 30) {
        _ = FileManager.default.createFile(atPath: stop, contents: nil)
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
    }

    /// The record in one slot's 4096 bytes: its write number, 0 for zeros, nil when torn.
    static func record(_ bytes: ArraySlice<UInt8>, slot: Int) -> UInt64? {
        if bytes.allSatisfy({ $0 == 0 }) { return 0 }
        let b = Array(bytes)
        func be64(_ o: Int) -> UInt64 { (0..<8).reduce(0) { $0 << 8 | UInt64(b[o + $1]) } }
        let i = be64(0)
        for k in stride(from: 0, to: 4096, by: 16) where be64(k) != i || be64(k + 8) != UInt64(slot) { return nil }
        return i
    }
}
