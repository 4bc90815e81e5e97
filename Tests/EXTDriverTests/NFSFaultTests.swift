import FakeXapi
import Foundation
import SMCore
import Testing
import VHD

/// The NFS SR's answers to wrong settings and a server that is not there: the Python SM's
/// fault codes, within the timeouts, and nothing changed on the export.
@Suite struct NFSFaultTests {
    /// An NFS SR environment with `other` put in the SR's other_config.
    func nfsSR(other: [String: String] = [:]) throws -> TestSR {
        let sr = try TestSR(mode: .nfs)
        if var record = sr.fake.sr(uuid: sr.srUUID) {
            record.otherConfig.merge(other) { $1 }
            sr.fake.updateSR(record)
        }
        return sr
    }

    /// `command` with `device_config` edited by `edit`.
    func call(_ sr: TestSR, _ command: String, _ edit: @escaping (inout [XMLRPCMember]) -> Void) throws -> SmdriverResult {
        try sr.call(command) { $0.editDeviceConfig(edit) }
    }

    /// Sets (or removes, with nil) one device_config key.
    static func set(_ key: String, _ value: String?) -> (inout [XMLRPCMember]) -> Void {
        { m in
            m.removeAll { $0.name == key }
            if let value { m.append(XMLRPCMember(key, .string(value))) }
        }
    }

    @Test func aServerWithNothingOnItsPortIs108AtOnce() throws {
        let sr = try nfsSR()
        defer { sr.cleanup() }
        // A port nothing listens on: the reachability check refuses before any mount.
        let r = try call(sr, "sr_create", Self.set("options", "port=9,mountport=9"))
        #expect(sr.fault(r)?.code == 108, "\(r)")
        #expect(r.seconds < 5, "refused connections answer at once: \(r.seconds) s")
        #expect(!FileManager.default.fileExists(atPath: sr.srDirectory), "nothing made")
    }

    @Test func aServerThatNeverAnswersIs108WithinTheTimeout() throws {
        // A port that accepts connections (the kernel completes them from the backlog) and
        // never answers an RPC: the mount waits for its timeout, nfs-timeout=20 (2 s).
        let sr = try nfsSR(other: ["nfs-timeout": "20", "nfs-retrans": "1"])
        defer { sr.cleanup() }
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && listen(fd, 16) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        try #require(bound)
        let port = Int(UInt16(bigEndian: address.sin_port))
        let r = try call(sr, "sr_attach", Self.set("options", "port=\(port),mountport=\(port)"))
        #expect(sr.fault(r)?.code == 108, "\(r)")
        #expect(r.seconds >= 1.5 && r.seconds < 15, "nfs-timeout=20 (2 s): answered after \(r.seconds) s")
    }

    @Test func missingServerIs102AndMissingServerPathIs101() throws {
        let sr = try nfsSR()
        defer { sr.cleanup() }
        #expect(sr.fault(try call(sr, "sr_create", Self.set("server", nil)))?.code == 102)
        #expect(sr.fault(try call(sr, "sr_attach", Self.set("serverpath", nil)))?.code == 101)
        #expect(sr.fault(try call(sr, "sr_create", Self.set("serverpath", "relative/path")))?.code == 103)
        #expect(sr.fault(try call(sr, "sr_create", Self.set("serverpath", "/a/../../etc")))?.code == 103)
    }

    @Test func probeWithoutServerPathListsTheExportsOnStderr() throws {
        let sr = try nfsSR()
        defer { sr.cleanup() }
        let server = try NFSTestServer.require()
        let r = try call(sr, "sr_probe", Self.set("serverpath", nil))
        #expect(sr.fault(r)?.code == 101, "\(r)")
        // Asked on the MOUNT port the options name (the portmapper knows only the server registered last).
        #expect(r.stderr.contains("<nfs-exports>") && r.stderr.contains("<Path>\(server.export)</Path>")
                && r.stderr.contains("<Target>\(server.host)</Target>"), "\(r.stderr)")
    }

    @Test func probeVersionAnswersTheVersionsThisClientUses() throws {
        let sr = try nfsSR()
        defer { sr.cleanup() }
        let v = try sr.value(try call(sr, "sr_probe", Self.set("probeversion", "true")))
        #expect(v.stringValue?.contains("<SupportedVersions>") == true && v.stringValue?.contains("<Version>3</Version>") == true, "\(v)")
    }

    @Test(arguments: ["4", "4.1", "2", "banana"])
    func otherVersionsAre72(_ version: String) throws {
        let sr = try nfsSR()
        defer { sr.cleanup() }
        let r = try call(sr, "sr_create", Self.set("nfsversion", version))
        #expect(sr.fault(r)?.code == 72, "\(r)")
        #expect(!FileManager.default.fileExists(atPath: sr.srDirectory))
    }

    @Test func aPathTheServerDoesNotExportIs73() throws {
        let sr = try nfsSR()
        defer { sr.cleanup() }
        let r = try call(sr, "sr_create", Self.set("serverpath", "/no/such/export"))
        #expect(sr.fault(r)?.code == 73, "\(r)")
    }

    @Test func aReadOnlyExportIs461AndKeepsNothing() throws {
        let sr = try nfsSR()
        defer { sr.cleanup() }
        let ro = try #require(ProcessInfo.processInfo.environment["SWIFTSM_TEST_NFS_RO"])
        let before = try FileManager.default.contentsOfDirectory(atPath: ro)
        let r = try call(sr, "sr_create", Self.set("serverpath", ro))
        #expect(sr.fault(r)?.code == 461, "\(r)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: ro) == before, "nothing made on the export")
    }

    @Test func attachingAnSRWhoseDirectoryIsGoneIs73() throws {
        let sr = try nfsSR()
        defer { sr.cleanup() }
        try sr.value(try sr.call("sr_create"))
        try FileManager.default.removeItem(atPath: sr.srDirectory)
        #expect(sr.fault(try sr.call("sr_attach"))?.code == 73)
    }

    @Test func createOnANonEmptySRDirectoryIs42SRExists() throws {
        let sr = try nfsSR()
        defer { sr.cleanup() }
        try FileManager.default.createDirectory(atPath: sr.srDirectory, withIntermediateDirectories: true)
        #expect(FileManager.default.createFile(atPath: sr.srDirectory + "/someone-elses.vhd", contents: Data([1, 2, 3])))
        #expect(sr.fault(try sr.call("sr_create"))?.code == 42)
        #expect(try FileManager.default.contentsOfDirectory(atPath: sr.srDirectory) == ["someone-elses.vhd"])
    }

    @Test func udpIsRefusedClearly() throws {
        let sr = try nfsSR()
        defer { sr.cleanup() }
        let r = try call(sr, "sr_create", Self.set("useUDP", "true"))
        #expect(sr.fault(r)?.code == 73 && sr.fault(r)?.string.contains("UDP") == true, "\(r)")
    }

    /// An export whose file system is full: vdi_create is 44 (`SRNoSpace`) and leaves nothing
    /// half-made; with room again, the same call succeeds. The export is a 64 MiB ext4 on a
    /// loop device, served by a private server.
    @Test func aFullExportIs44AndKeepsNothingHalfMade() throws {
        if let why = LoopDevice.unavailableReason { try Test.cancel(Comment(rawValue: "no loop device: \(why)")) }
        let root = "/tmp/nff-" + UUID().uuidString.prefix(8).lowercased()
        try FileManager.default.createDirectory(atPath: root + "/export", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let loop = try LoopDevice(image: root + "/fs.img", size: 64 << 20)
        defer { loop.detach() }
        try Shell.run("/sbin/mkfs.ext4", ["-F", "-q", "-m", "0", loop.device])
        try Shell.run("/bin/mount", [loop.device, root + "/export"])
        defer { _ = try? Shell.run("/bin/umount", ["-l", root + "/export"]) }
        let server = try NFSTestServer.startPrivate(root: root)
        defer { try? server.stop() }
        let sr = try TestSR(mode: .nfs, nfsServer: server)
        defer { sr.cleanup() }
        try sr.createAndAttach()
        _ = try sr.createVDI(size: 1 << 30)
        // Fill the file system from this host, as another client would.
        let filler = server.export + "/filler"
        #expect(FileManager.default.createFile(atPath: filler, contents: nil))
        let handle = try #require(FileHandle(forWritingAtPath: filler))
        for size in [1 << 20, 4096, 512] {
            let chunk = Data(count: size)
            while (try? handle.write(contentsOf: chunk)) != nil {}
        }
        try? handle.synchronize()
        try? handle.close()
        let before = try sr.disk()
        let r = try sr.call("vdi_create")
        #expect(sr.fault(r)?.code == 44, "\(r)")
        #expect(try sr.disk() == before && sr.strayFiles().isEmpty, "\(sr.files())")
        try FileManager.default.removeItem(atPath: filler)
        // ext4 gives a removed file's blocks back when its journal commits: sync, and wait until
        // statfs shows room for the new VHD's metadata again.
        sync()
        let deadline = Date().addingTimeInterval(15)
        while Date() < deadline {
            var st = statvfs()
            if statvfs(server.export, &st) == 0 && UInt64(st.f_bavail) * UInt64(st.f_frsize) > 32 << 20 { break }
            usleep(200_000)
        }
        _ = try sr.createVDI(size: 1 << 30)
        #expect(sr.treeProblems().isEmpty)
    }
}
