import Foundation
import Testing
@testable import VHD

/// Interoperability with the real qemu-img / qemu-io (format `vpc`), reference §6.1.
/// qemu only ever writes images qemu created, and never reads differencing VHDs (it reads them
/// wrongly); engine-made images are only read by qemu.
@Suite(.enabled(if: Qemu.available, "qemu-img is not installed at /usr/bin/qemu-img; install the qemu-utils package"))
struct QemuInteropTests {
    let provider = FileStoreProvider()

    // MARK: - qemu writes, the engine reads

    enum Kind: String, CaseIterable, Sendable { case dynamic, fixed, forceSize }

    @Test(arguments: Kind.allCases)
    func qemuCreatedImageReadsLikeQemuConvert(_ kind: Kind) throws {
        let dir = Fixtures.scratch("qemu-made")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let vhd = dir + "/q.vhd", raw = dir + "/q.raw"
        let options: [String] = switch kind {
        case .dynamic: []
        case .fixed: ["-o", "subformat=fixed"]
        case .forceSize: ["-o", "force_size=on"]
        }
        // 20 MiB: qemu rounds it up to a CHS product (20 M + 4 KiB) unless force_size.
        let writes: [(pattern: UInt8, offset: Int, length: Int)] = [(0xab, 1 << 20, 64 << 10), (0xcd, 10 << 20, 1536),
                                                                     (0xef, (20 << 20) - 4096, 4096), (0x11, 4 << 20, 2 << 20)]
        if Qemu.hasIO {
            try Qemu.ok(Qemu.img, ["create", "-q", "-f", "vpc"] + options + [vhd, "20M"])
            var args = ["-f", "vpc"]
            for w in writes { args += ["-c", "write -q -P 0x\(String(w.pattern, radix: 16)) \(w.offset) \(w.length)"] }
            try Qemu.ok(Qemu.io, args + [vhd])
        } else {
            var src = [UInt8](repeating: 0, count: 20 << 20)
            for w in writes { for i in w.offset..<w.offset + w.length { src[i] = w.pattern } }
            TestBytes.write(src, to: dir + "/src.raw")
            try Qemu.ok(Qemu.img, ["convert", "-q", "-f", "raw", "-O", "vpc"] + options + [dir + "/src.raw", vhd])
        }
        try Qemu.ok(Qemu.img, ["convert", "-q", "-f", "vpc", "-O", "raw", vhd, raw])
        let expected = TestBytes.file(raw)
        let chain = try VHDChain(path: vhd, provider: provider)
        #expect(chain.virtualSize == UInt64(expected.count))
        #expect(try Qemu.virtualSize(vhd) == chain.virtualSize)
        let creator = chain.leaf.footer.creatorName
        switch kind {
        case .dynamic:
            #expect(creator == "qemu" && chain.leaf.diskType == .dynamic)
            #expect(chain.virtualSize == 20_994_048, "20 MiB rounded up to a CHS product as qemu 7.2 does (+ 8 KiB)")
        case .fixed:
            #expect(creator == "qemu" && chain.leaf.diskType == .fixed)
        case .forceSize:
            #expect(creator == "qem2" && chain.virtualSize == 20 << 20)
            #expect(chain.leaf.footer.geometry == Geometry(cylinders: 65535, heads: 16, sectorsPerTrack: 255))
        }
        let mine = try chain.read(count: Int(chain.virtualSize), at: 0)
        #expect(mine == expected, "first difference at \(TestBytes.differences(mine, expected, allowed: []).first ?? -1)")
        // The data is what was written, independently of qemu's own reading.
        for w in writes { #expect(mine[w.offset..<w.offset + w.length].allSatisfy { $0 == w.pattern }, "0x\(String(w.pattern, radix: 16))") }
        #expect(mine[(1 << 20) - 1] == 0 && mine[(1 << 20) + (64 << 10)] == 0)
        // Convert.vhdToRaw gives the same bytes as qemu-img convert.
        try Convert.vhdToRaw(source: vhd, destination: dir + "/mine.raw", provider: provider)
        #expect(try Qemu.filesEqual(dir + "/mine.raw", raw))
        // qemu's images pass the engine's check, except force_size's geometry (as vhd-util says).
        let problems = Check.run(path: vhd, provider: provider).allProblems
        if kind == .forceSize {
            #expect(problems == ["geometry too large"])
        } else {
            #expect(problems.isEmpty, "\(problems)")
        }
    }

    // MARK: - The engine writes, qemu reads

    @Test(arguments: [false, true])
    func rawToVHDComparesEqualInQemu(_ fixed: Bool) throws {
        let dir = Fixtures.scratch("qemu-convert")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var rng = SplitMix64(seed: fixed ? 17 : 42)
        var raw = [UInt8](repeating: 0, count: 24 << 20)
        // Random data at scattered places: a whole block, runs inside blocks, single sectors,
        // the very last byte; and one block that is written but all zero.
        func fill(_ at: Int, _ n: Int) { for i in at..<at + n { raw[i] = UInt8(truncatingIfNeeded: rng.next()) } }
        fill(3 << 21, 2 << 20)
        fill((0 << 21) + 12345, 4096)
        fill((7 << 21) + 512 * 4095, 512)
        fill((5 << 21) + 777_777, 100_000)
        fill((11 << 21) + (2 << 20) - 1, 1)
        for _ in 0..<20 { fill(rng.int(0..<(24 << 20 - 600)), 1 + rng.int(0..<(599))) }
        TestBytes.write(raw, to: dir + "/src.raw")
        let vhd = dir + "/e.vhd"
        let result = try Convert.rawToVHD(source: dir + "/src.raw", destination: vhd, provider: provider, fixed: fixed)
        #expect(result.virtualSize == 24 << 20)
        #expect(Check.run(path: vhd, provider: provider).allValid)
        let cmp = try Qemu.run(Qemu.img, ["compare", "-f", "vpc", "-F", "raw", vhd, dir + "/src.raw"])
        #expect(cmp.status == 0, "qemu-img compare: \(cmp.out) \(cmp.err)")
        #expect(try Qemu.virtualSize(vhd) == 24 << 20)
        let info = try Qemu.info(vhd)
        #expect(info["format"] as? String == "vpc")
        // Control: qemu-img compare does notice a one-byte difference.
        raw[(5 << 21) + 800_000] ^= 0xff
        TestBytes.write(raw, to: dir + "/other.raw")
        #expect(try Qemu.run(Qemu.img, ["compare", "-q", "-f", "vpc", "-F", "raw", vhd, dir + "/other.raw"]).status == 1)
        // And the engine reads back what qemu reads.
        try Qemu.ok(Qemu.img, ["convert", "-q", "-f", "vpc", "-O", "raw", vhd, dir + "/qemu.raw"])
        #expect(try Qemu.filesEqual(dir + "/qemu.raw", dir + "/src.raw"))
    }

    @Test func rawOfOddSizeIsRoundedUpTo2MiB() throws {
        let dir = Fixtures.scratch("qemu-odd")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var raw = [UInt8](repeating: 0, count: (5 << 20) + 1536)
        for i in raw.count - 1536..<raw.count { raw[i] = UInt8(i & 0xff) | 1 }
        TestBytes.write(raw, to: dir + "/src.raw")
        let vhd = dir + "/e.vhd"
        try Convert.rawToVHD(source: dir + "/src.raw", destination: vhd, provider: provider)
        #expect(try Qemu.virtualSize(vhd) == 6 << 20)
        // The extra tail reads as zeros: compare warns about the size but succeeds; -s (strict) fails.
        #expect(try Qemu.run(Qemu.img, ["compare", "-q", "-f", "vpc", "-F", "raw", vhd, dir + "/src.raw"]).status == 0)
        #expect(try Qemu.run(Qemu.img, ["compare", "-q", "-s", "-f", "vpc", "-F", "raw", vhd, dir + "/src.raw"]).status == 1)
    }

    @Test(arguments: [false, true])
    func chainWritesCompareEqualInQemu(_ fixed: Bool) throws {
        let dir = Fixtures.scratch("qemu-writes")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let vhd = dir + "/w.vhd"
        let size = 20 << 20
        if fixed { try Create.fixed(at: vhd, size: UInt64(size), provider: provider) } else {
            try Create.dynamic(at: vhd, size: UInt64(size), provider: provider)
        }
        var expected = [UInt8](repeating: 0, count: size)
        var rng = SplitMix64(seed: fixed ? 7 : 8)
        let chain = try VHDChain(path: vhd, provider: provider, writable: true)
        // Unaligned writes of every size class, some crossing block boundaries, some overwriting.
        var writes: [(Int, Int)] = [(0, 1), ((2 << 20) - 100, 300), (size - 513, 513), ((4 << 20) - 1, 2 << 20), (12345, 70_000)]
        for _ in 0..<40 { writes.append((rng.int(0..<(size - 140_000)), 1 + rng.int(0..<(140_000)))) }
        for (at, n) in writes {
            let data = (0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next()) | 1 }
            try chain.write(data, at: UInt64(at))
            expected.replaceSubrange(at..<at + n, with: data)
        }
        try chain.flush()
        #expect(try chain.read(count: size, at: 0) == expected)
        TestBytes.write(expected, to: dir + "/expected.raw")
        #expect(Check.run(path: vhd, provider: provider).allValid)
        let cmp = try Qemu.run(Qemu.img, ["compare", "-f", "vpc", "-F", "raw", vhd, dir + "/expected.raw"])
        #expect(cmp.status == 0, "qemu-img compare: \(cmp.out) \(cmp.err)")
        #expect(try Qemu.virtualSize(vhd) == UInt64(size))
        try Qemu.ok(Qemu.img, ["convert", "-q", "-f", "vpc", "-O", "raw", vhd, dir + "/qemu.raw"])
        try Convert.vhdToRaw(source: vhd, destination: dir + "/mine.raw", provider: provider)
        #expect(try Qemu.filesEqual(dir + "/qemu.raw", dir + "/expected.raw"))
        #expect(try Qemu.filesEqual(dir + "/mine.raw", dir + "/expected.raw"))
    }

    // MARK: - Convert.vhdToRaw vs qemu-img convert on standalone fixtures

    /// Standalone images only (qemu reads differencing disks wrongly). footer-missing-crash is the
    /// crash case: qemu (offset-0 footer first) returns the written data, as the engine must.
    @Test(arguments: ["data/dynamic-full-blocks.vhd", "data/dynamic-scattered.vhd", "data/qemu-odd-size.vhd",
                      "fixed/fixed-2mib.vhd", "fixed/qemu-fixed-1m.vhd", "empty/qemu-dynamic-10m.vhd",
                      "empty/qemu-dynamic-10m-force-size.vhd", "empty/dynamic-10mib.vhd", "resize/resized-journaled.vhd",
                      "chain-depth3/base.vhd", "corrupt/footer-missing-crash.vhd", "corrupt/footer-bad-checksum-primary-only.vhd"])
    func vhdToRawMatchesQemuConvert(_ name: String) throws {
        let dir = Fixtures.scratch("qemu-fixture")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let meta = Fixtures.files[name]!["metadata"] as! [String: Any]
        #expect(meta["disk_type"] as! String != "differencing")
        // qemu reads a copy, so that not even a lock touches the fixture.
        let src = dir + "/in.vhd"
        try FileManager.default.copyItem(atPath: Fixtures.vhd + "/" + name, toPath: src)
        try Qemu.ok(Qemu.img, ["convert", "-q", "-f", "vpc", "-O", "raw", src, dir + "/qemu.raw"])
        try Convert.vhdToRaw(source: Fixtures.vhd + "/" + name, destination: dir + "/mine.raw", provider: provider)
        #expect(try Qemu.filesEqual(dir + "/mine.raw", dir + "/qemu.raw"), "\(name)")
        #expect(try Qemu.virtualSize(src) == UInt64(meta["virtual_size"] as! Int))
    }
}

// MARK: - Running qemu

/// qemu-img / qemu-io through Foundation's Process.
enum Qemu {
    static let img = "/usr/bin/qemu-img"
    static let io = "/usr/bin/qemu-io"
    static var available: Bool { FileManager.default.isExecutableFile(atPath: img) }
    static var hasIO: Bool { FileManager.default.isExecutableFile(atPath: io) }

    struct Failed: Error, CustomStringConvertible {
        var description: String
    }

    /// Runs `exe args`; returns the exit status and both outputs.
    static func run(_ exe: String, _ args: [String]) throws -> (status: Int32, out: String, err: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = args
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = FileHandle.nullDevice
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
    }

    /// Runs and requires exit status 0.
    static func ok(_ exe: String, _ args: [String]) throws {
        let r = try run(exe, args)
        guard r.status == 0 else {
            throw Failed(description: "\(exe) \(args.joined(separator: " ")) exited \(r.status): \(r.err)")
        }
    }

    /// `qemu-img info --output=json`.
    static func info(_ path: String) throws -> [String: Any] {
        let r = try run(img, ["info", "--output=json", "-f", "vpc", path])
        guard r.status == 0, let obj = try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: Any] else {
            throw Failed(description: "qemu-img info \(path): \(r.err)")
        }
        return obj
    }

    /// The virtual size qemu reports.
    static func virtualSize(_ path: String) throws -> UInt64? {
        (try info(path)["virtual-size"] as? NSNumber)?.uint64Value
    }

    /// Whether two files have the same size and bytes (read 4 MiB at a time).
    static func filesEqual(_ a: String, _ b: String) throws -> Bool {
        guard let ha = FileHandle(forReadingAtPath: a), let hb = FileHandle(forReadingAtPath: b) else { return false }
        defer { try? ha.close(); try? hb.close() }
        while true {
            let x = try ha.read(upToCount: 4 << 20) ?? Data()
            let y = try hb.read(upToCount: 4 << 20) ?? Data()
            if x != y { return false }
            if x.isEmpty { return true }
        }
    }
}

