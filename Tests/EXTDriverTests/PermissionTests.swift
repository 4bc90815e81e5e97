import Foundation
import SMCore
import Testing

/// VM disks are root's alone: the SR directory (or the mounted file system's root) is 0700 and
/// every volume and journal 0600 whatever the umask, so another local user can neither list the
/// SR nor read a disk (the Python SM makes its SR mount points 0700 too).
@Suite struct PermissionTests {
    /// Modes of `path` (permission bits only).
    func mode(_ path: String) -> mode_t {
        var st = stat()
        guard stat(path, &st) == 0 else { return 0o7777 }
        return st.st_mode & 0o7777
    }

    /// Runs `tool args` as the unprivileged user nobody (uid and gid 65534, no groups); its status.
    func asNobody(_ tool: String, _ args: [String]) throws -> Int32 {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
        p.arguments = ["--reuid=65534", "--regid=65534", "--clear-groups", tool] + args
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        return p.terminationStatus
    }

    @Test(arguments: SRMode.fileModes) func srDirectoryAndVolumesAreRootsAlone(mode srMode: SRMode) throws {
        if srMode == .device, let why = LoopDevice.unavailableReason { Issue.record(Comment(rawValue: why)); return }
        let old = umask(0)        // the widest umask: modes must not depend on it
        defer { umask(old) }
        let sr = try TestSR(mode: srMode)
        defer { sr.cleanup() }
        try sr.createAndAttach()
        let vdi = try sr.createVDI(size: 8 << 20)
        try sr.writePattern(vdi, seed: 7)
        let snapshot = try sr.vdiInfo(try sr.value(try sr.call("vdi_snapshot", vdi: vdi)))
        #expect(mode(sr.srDirectory) == 0o700, "SR directory mode \(String(mode(sr.srDirectory), radix: 8))")
        let volumes = sr.files().filter { $0.hasSuffix(".vhd") }
        #expect(volumes.count >= 3, "\(volumes)")
        for f in volumes + sr.files().filter({ $0.hasPrefix("journal-") || $0 == ".swiftsm-sr" }) {
            #expect(mode(sr.srDirectory + "/" + f) == 0o600, "\(f) has mode \(String(mode(sr.srDirectory + "/" + f), radix: 8))")
        }
        // What an unprivileged local user gets: nothing, neither the listing nor a disk's bytes.
        // (Root can still read them, and a file copied aside with the same mode would be readable:
        // the checks above are what keep it closed.)
        #expect(try asNobody("/bin/ls", [sr.srDirectory]) != 0, "nobody can list the SR")
        #expect(try asNobody("/usr/bin/head", ["-c", "1", sr.path(vdi)]) != 0, "nobody can read a disk")
        #expect(try asNobody("/usr/bin/head", ["-c", "1", sr.path(snapshot)]) != 0, "nobody can read a snapshot")
        #expect(try asNobody("/usr/bin/true", []) == 0, "the unprivileged runner itself works")
    }

    @Test func attachClosesAnSRDirectoryMadeOpen() throws {
        let sr = try TestSR(mode: .path)
        defer { sr.cleanup() }
        try sr.createAndAttach()
        _ = try sr.value(try sr.call("sr_detach"))
        chmod(sr.srDirectory, 0o755)         // as an SR made by an older version would be
        _ = try sr.value(try sr.call("sr_attach"))
        #expect(mode(sr.srDirectory) == 0o700)
    }
}
