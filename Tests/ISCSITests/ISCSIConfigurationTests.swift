import ISCSI
import Testing

/// device-config as LVHDoISCSISR reads it: portals, ports, IQNs, SCSIid, CHAP; the faults of
/// what is missing or malformed; secrets kept out of every text.
@Suite struct ISCSIConfigurationTests {
    @Test func portalsPortsAndDefaults() throws {
        let t = try ISCSITarget(deviceConfig: ["target": "10.0.0.1, 10.0.0.2:3261,[fe80::1]:3262,::1,storage.example",
                                               "port": "3270", "targetIQN": "iqn.2026-12.org.example:sr1", "SCSIid": "3600a"])
        #expect(t.portals == [ISCSIPortal(host: "10.0.0.1", port: 3270), ISCSIPortal(host: "10.0.0.2", port: 3261),
                              ISCSIPortal(host: "fe80::1", port: 3262), ISCSIPortal(host: "::1", port: 3270),
                              ISCSIPortal(host: "storage.example", port: 3270)])
        #expect(t.portals[2].description == "[fe80::1]:3262")
        #expect(t.iqn == "iqn.2026-12.org.example:sr1")
        #expect(t.scsiID == "3600a")
        #expect(t.chap == nil)
        let d = try ISCSITarget(deviceConfig: ["target": "10.0.0.1"], requireIQN: false, requireSCSIid: false)
        #expect(d.portals == [ISCSIPortal(host: "10.0.0.1", port: 3260)])
        #expect(d.iqn == nil)
        #expect(try ISCSITarget(deviceConfig: ["target": "h", "targetIQN": "*"], requireIQN: false, requireSCSIid: false).iqn == nil)
    }

    @Test func missingAndMalformedParametersMapToTheirFaults() {
        func code(_ dc: [String: String], iqn: Bool = true, scsi: Bool = true) -> Int? {
            do { _ = try ISCSITarget(deviceConfig: dc, requireIQN: iqn, requireSCSIid: scsi); return nil } catch { return (error as? ISCSIError)?.smapiCode }
        }
        #expect(code([:]) == 95)
        #expect(code(["target": " "]) == 95)
        #expect(code(["target": "h"]) == 96)
        #expect(code(["target": "h", "targetIQN": "iqn.2026-12.org.x:a"]) == 107)
        #expect(code(["target": "h", "port": "abc"], iqn: false, scsi: false) == 142)
        #expect(code(["target": "h", "port": "0"], iqn: false, scsi: false) == 142)
        #expect(code(["target": "h", "port": "65536"], iqn: false, scsi: false) == 142)
        #expect(code(["target": "h:99999"], iqn: false, scsi: false) == 142)
        #expect(code(["target": "h", "targetIQN": "not-an-iqn"], scsi: false) == 106)
        #expect(code(["target": "h", "chapuser": "u"], iqn: false, scsi: false) == 115)
        #expect(code(["target": "h", "incoming_chapuser": "u", "incoming_chappassword": "p"], iqn: false, scsi: false) == 115)
        #expect(code(["target": "a/b"], iqn: false, scsi: false) == 140)
        #expect(ISCSIError.badPort("x").smapiName == "ISCSIPort")
        #expect(ISCSIError.login(portal: "p", iqn: "q", reason: "r").smapiCode == 68)
        #expect(ISCSIError.unreachable(portal: "p", reason: "r").smapiCode == 141)
    }

    @Test func secretsNeverReachDescriptions() throws {
        let t = try ISCSITarget(deviceConfig: ["target": "10.0.0.1", "targetIQN": "iqn.2026-12.org.example:sr1", "SCSIid": "3x",
                                               "chapuser": "alice", "chappassword": "s3cr3t-Init",
                                               "incoming_chapuser": "tgt", "incoming_chappassword": "s3cr3t-Tgt"])
        let chap = try #require(t.chap)
        #expect(chap.isMutual)
        for text in [t.description, "\(t)", String(describing: t), String(reflecting: t), "\(chap)", "\(chap.secret)",
                     String(reflecting: chap), dumped(t)] {
            #expect(!text.contains("s3cr3t"), "\(text)")
        }
        #expect(t.description.contains("alice"))
        #expect(t.redact("CHAP failed for s3cr3t-Init and s3cr3t-Tgt") == "CHAP failed for <secret> and <secret>")
        chap.secret.withCString { #expect(String(cString: $0) == "s3cr3t-Init") }
    }

    private func dumped<T>(_ value: T) -> String {
        var s = ""
        dump(value, to: &s)
        return s
    }

    @Test func iscsiNames() {
        for good in ["iqn.2026-12.org.example:sr1", "iqn.1992-01.com.example", "eui.0123456789ABCDEF", "naa.52004567ba64678d"] {
            #expect(ISCSIName.isValid(good), "\(good)")
        }
        for bad in ["", "iqn", "iqn.26-12.org.x", "iqn.2026-12.", "eui.123", "iqn.2026-12.org.x:with space", "target1"] {
            #expect(!ISCSIName.isValid(bad), "\(bad)")
        }
    }
}
