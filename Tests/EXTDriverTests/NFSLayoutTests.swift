import FakeXapi
import Foundation
import SMCore
import Testing
import VHD

/// Where the NFS SR keeps its files: NFSSR's layout, so that an SR another storage manager made
/// on the export attaches here, and `nosubdir` SRs that are `serverpath` itself.
@Suite struct NFSLayoutTests {
    @Test func anSRLaidOutByAnotherManagerAttachesAndScans() throws {
        let sr = try TestSR(mode: .nfs)
        defer { sr.cleanup() }
        // As NFSSR leaves it: <serverpath>/<sr uuid>/<vdi uuid>.vhd, a snapshot chain included.
        try FileManager.default.createDirectory(atPath: sr.srDirectory, withIntermediateDirectories: true)
        let base = UUID().uuidString.lowercased(), leaf = UUID().uuidString.lowercased()
        let provider = FileStoreProvider()
        try Create.dynamic(at: sr.srDirectory + "/" + base + ".vhd", size: 32 << 20, provider: provider)
        let chain = try VHDChain(path: sr.srDirectory + "/" + base + ".vhd", provider: provider, writable: true)
        try chain.write([UInt8](repeating: 0x5a, count: 1 << 20), at: 4 << 20)
        try chain.flush()
        try Snapshot.create(child: sr.srDirectory + "/" + leaf + ".vhd", parent: sr.srDirectory + "/" + base + ".vhd", provider: provider)
        try VHDRepository(container: DirectoryContainer(directory: sr.srDirectory)).setHidden(base, true)
        try sr.value(try sr.call("sr_attach"))
        try sr.value(try sr.call("sr_scan"))
        #expect(sr.fake.vdi(uuid: leaf) != nil && sr.fake.vdi(uuid: base) != nil, "both VHDs have records after the scan")
        #expect(sr.fake.vdi(uuid: leaf)?.smConfig["vhd-parent"] == base)
        #expect(try sr.contentHash(leaf) == sr.contentHash(base))
        let snap = try sr.vdiInfo(try sr.value(try sr.call("vdi_snapshot", vdi: leaf)))
        #expect(try sr.contentHash(snap) == sr.contentHash(base))
        #expect(sr.treeProblems().isEmpty, "\(sr.treeProblems())")
    }

    @Test func noSubdirSRsAreServerPathItself() throws {
        let sr = try TestSR(mode: .nfs)
        defer { sr.cleanup() }
        let serverPath = StorePath.directory(of: sr.srDirectory)
        let nosubdir: (inout RequestDocument) -> Void = { $0[member: "sr_sm_config"] = .struct([XMLRPCMember("nosubdir", "true")]) }
        try sr.value(try sr.call("sr_create", nosubdir))
        try sr.value(try sr.call("sr_attach", nosubdir))
        let v = try sr.vdiInfo(try sr.value(try sr.call("vdi_create", nosubdir)))
        #expect(FileManager.default.fileExists(atPath: serverPath + "/" + v + ".vhd"), "the VHD is in serverpath itself")
        #expect(!FileManager.default.fileExists(atPath: sr.srDirectory), "no <sr uuid> directory")
    }
}
