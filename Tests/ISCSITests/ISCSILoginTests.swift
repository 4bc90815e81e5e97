import Foundation
import TestSupport
import ISCSI
import Testing

/// Logging in to a real target (tgt): discovery, the LUN's identity and size, CHAP and mutual
/// CHAP, and the typed errors of what goes wrong (the secret never in their text).
@Suite(.enabled(if: TestTarget.available, "needs SWIFTSM_TEST_ISCSI (scripts/with-iscsi-target.sh)"))
struct ISCSILoginTests {
    @Test func discoveryListsTheTargetAndItsPortal() throws {
        let t = try TestTarget.plain()
        let found = try ISCSIDiscovery.sendTargets(t.target(lun: nil))
        let mine = try #require(found.first { $0.iqn == t.iqn })
        #expect(mine.addresses.contains(ISCSIPortal(host: t.host, port: t.port)))
        #expect(mine.portals.contains { $0.hasPrefix("\(t.host):\(t.port),") })
    }

    @Test func identitySizeAndLimitsOfBothLUNs() throws {
        let t = try TestTarget.plain()
        let disks = try ISCSIDiscovery.disks(t.target(lun: nil))
        #expect(disks.map(\.lun) == [1, 2])
        for d in disks {
            #expect(d.size == 256 << 20)
            #expect(d.blockSize == 512)
            #expect(d.inquiry.vendor.hasPrefix("IET"))
            // tgt puts NAA designators first: `3` and the 16-byte NAA 6 designator in hex.
            #expect(d.scsiID.count == 33 && d.scsiID.hasPrefix("36"), "\(d.scsiID)")
            #expect(d.scsiID.dropFirst().allSatisfy { $0.isHexDigit })
            // The script gives each LUN scsi_id = sha1("<iqn>/<lun>")[0..<32] and scsi_sn = the next 8
            // characters; tgt builds its first NAA designator as the nibble 6 and the scsi_id's
            // hex digits after the first, so `scsi_id -g -u` prints "36" + scsi_id.dropFirst().
            let sha = sha1Hex("\(t.iqn)/\(d.lun)")
            #expect(d.scsiID == "36" + String(sha.prefix(32).dropFirst()), "\(d.scsiID) vs \(sha)")
            #expect(d.serial == String(sha.dropFirst(32).prefix(8)))
        }
        #expect(disks[0].scsiID != disks[1].scsiID)
        #expect(!disks[0].limits.unmapSupported)
        #expect(disks[1].limits.unmapSupported && disks[1].limits.unmappedReadZeros)

        // The LUN found again by its SCSI id alone, and its T10 designator is the script's scsi_id.
        var byID = t.target(lun: nil)
        byID.scsiID = disks[1].scsiID
        let device = try ISCSIDevice(target: byID)
        defer { device.close() }
        #expect(device.lun == 2)
        #expect(device.info == disks[1])
        #expect(device.pathCount.active == 1 && device.pathCount.total == 1)
        try device.require(size: 256 << 20)
        #expect(throws: ISCSIError.lunTooSmall(size: 256 << 20, needed: 1 << 30)) { try device.require(size: 1 << 30) }
        #expect(ISCSIError.lunTooSmall(size: 0, needed: 1).smapiCode == 44)
    }

    @Test func headerDigestsCarryIO() throws {
        let t = try TestTarget.plain()
        var config = t.target(lun: 1)
        config.headerDigest = true
        let store = ISCSIStore(device: try ISCSIDevice(target: config))
        defer { store.device.close() }
        let data = Pattern.bytes(3 << 20, seed: 11)
        try store.write(data, at: 200 << 20)
        #expect(SHA256.hex(try store.read(count: data.count, at: 200 << 20)) == SHA256.hex(data))
    }

    @Test func wrongIQNUnknownLUNAndWrongSCSIidAreTyped() throws {
        let t = try TestTarget.plain()
        var wrongIQN = t.target()
        wrongIQN.iqn = "iqn.2026-12.org.swiftsm.test:nosuch"
        #expect(throws: ISCSIError.targetNotFound(portal: "\(t.host):\(t.port)", iqn: "iqn.2026-12.org.swiftsm.test:nosuch")) {
            _ = try ISCSIDevice(target: wrongIQN)
        }
        #expect(ISCSIError.targetNotFound(portal: "", iqn: "").smapiCode == 96)
        #expect(throws: ISCSIError.lunNotFound(iqn: t.iqn, lun: "7")) { _ = try ISCSIDevice(target: t.target(lun: 7)) }
        var wrongID = t.target(lun: 1)
        wrongID.scsiID = "3600000000000000000000000deadbeef"
        do {
            _ = try ISCSIDevice(target: wrongID)
            Issue.record("a wrong SCSIid was accepted")
        } catch let e as ISCSIError {
            guard case .scsiIDMismatch = e else { Issue.record("\(e)"); return }
            #expect(e.smapiCode == 107)
        }
        var unknownID = t.target(lun: nil)
        unknownID.scsiID = "3600000000000000000000000deadbeef"
        #expect(throws: ISCSIError.lunNotFound(iqn: t.iqn, lun: "with SCSIid 3600000000000000000000000deadbeef")) {
            _ = try ISCSIDevice(target: unknownID)
        }
    }

    @Test func closedPortIsUnreachable() throws {
        let t = try TestTarget.plain()
        // A port nothing listens on: bind one, learn its number, close it.
        let closed = TestTarget(host: t.host, port: try freePort(), iqn: t.iqn, state: "")
        do {
            _ = try ISCSIDevice(target: closed.target())
            Issue.record("login on a closed port succeeded")
        } catch let e as ISCSIError {
            guard case .unreachable = e else { Issue.record("\(e)"); return }
            #expect(e.smapiCode == 141 && e.smapiName == "ISCSITarget")
        }
        #expect(throws: ISCSIError.self) { _ = try ISCSIDiscovery.sendTargets(closed.target(lun: nil)) }
        // A name that does not resolve is the Python SM's DNSError (140).
        let nowhere = TestTarget(host: "nonexistent.invalid", port: t.port, iqn: t.iqn, state: "")
        #expect(throws: ISCSIError.badTarget("nonexistent.invalid")) { _ = try ISCSIDevice(target: nowhere.target()) }
        #expect(ISCSIError.badTarget("x").smapiCode == 140)
    }

    @Test func mutualCHAPLogsInAndWrongSecretsAreLoginErrorsWithoutTheSecret() throws {
        let (t, chap) = try TestTarget.chap()
        let device = try ISCSIDevice(target: t.target(chap: chap))
        #expect(device.info.size == 64 << 20)
        device.close()
        // One-way CHAP (the initiator does not ask the target to prove itself) logs in too.
        let oneWay = try ISCSIDevice(target: t.target(chap: ISCSIChap(user: chap.user, secret: chap.secret)))
        #expect(oneWay.info.scsiID == device.info.scsiID)
        oneWay.close()

        // Discovery needs no credentials even here.
        #expect(try ISCSIDiscovery.sendTargets(t.target(lun: nil)).contains { $0.iqn == t.iqn })

        let wrongSecret = "Wr0ng-\(UUID().uuidString)"
        var wrong = chap
        wrong.secret = ISCSISecret(wrongSecret)
        var right = ""
        chap.secret.withCString { right = String(cString: $0) }
        var wrongTarget = chap
        wrongTarget.targetSecret = ISCSISecret(wrongSecret)
        for (what, c) in [("wrong initiator secret", Optional(wrong)), ("no CHAP", nil), ("wrong target secret", wrongTarget)] {
            do {
                _ = try ISCSIDevice(target: t.target(chap: c))
                Issue.record("\(what): login succeeded")
            } catch let e as ISCSIError {
                guard case .login = e else { Issue.record("\(what): \(e)"); continue }
                #expect(e.smapiCode == 68 && e.smapiName == "ISCSILogin")
                for text in [e.description, "\(e)", String(reflecting: e), e.localizedDescription] {
                    #expect(!text.contains(wrongSecret) && !text.contains(right), "\(what): \(text)")
                }
            }
        }
    }
}

/// A TCP port on 127.0.0.1 that nothing listens on (bound, read, closed).
func freePort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    addr.sin_port = 0
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    let ok = withUnsafeMutablePointer(to: &addr) { p in
        p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0 }
    }
    guard ok else { throw TestFailure("no free port") }
    return Int(UInt16(bigEndian: addr.sin_port))
}

/// SHA-1 of `text` in hex, by the system's `sha1sum` (as the target script computes it).
func sha1Hex(_ text: String) -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("swiftsm-sha1-\(UUID().uuidString)")
    try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    let input = dir.appendingPathComponent("in").path
    let output = dir.appendingPathComponent("out").path
    _ = FileManager.default.createFile(atPath: input, contents: Data(text.utf8))
    _ = try? Spawned(["/bin/sh", "-c", "sha1sum < \(input)"], output: output).wait()
    return (try? String(contentsOfFile: output, encoding: .utf8)).map { String($0.prefix(40)) } ?? ""
}
