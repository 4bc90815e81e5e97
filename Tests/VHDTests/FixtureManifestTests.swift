import Foundation
import TestSupport
import Testing
@testable import VHD

/// Every public fixture read and compared with MANIFEST.json: metadata, content, verdicts.
@Suite struct FixtureManifestTests {
    static let entries: [String] = Fixtures.files.keys.filter { !$0.hasSuffix(".raw") }.sorted()
    let provider = FileStoreProvider()

    @Test(arguments: entries)
    func contentMatchesManifest(_ name: String) throws {
        let entry = Fixtures.files[name]!
        let accept = (entry["crosscheck"] as? [String: Any])?["accept"] as? [String] ?? ["content"]
        let path = Fixtures.vhd + "/" + name
        let chain: VHDChain
        do {
            chain = try VHDChain(path: path, provider: provider)
        } catch let e as VHDError {
            #expect(accept.contains("error"), "\(name) refused: \(e)")
            return
        }
        var hashes: [String] = []
        for key in ["content", "content_alt"] where accept.contains(key) {
            if let c = entry[key] as? [String: Any], let h = c["sha256"] as? String { hashes.append(h) }
        }
        do {
            let got = try Fixtures.contentHash(chain)
            #expect(hashes.contains(got), "\(name): content \(got) not in \(hashes)")
            if let c = entry["content"] as? [String: Any], let size = c["size"] as? Int {
                #expect(chain.virtualSize == UInt64(size))
            }
        } catch let e as VHDError {
            #expect(accept.contains("error"), "\(name) read failed: \(e)")
        }
    }

    @Test(arguments: entries.filter { Fixtures.files[$0]!["role"] as? String != "corrupt" })
    func metadataMatchesManifest(_ name: String) throws {
        let m = Fixtures.files[name]!["metadata"] as! [String: Any]
        let path = Fixtures.vhd + "/" + name
        let image = try VHDImage(store: try provider.open(path, writable: false), path: path, writable: false)
        #expect(image.virtualSize == UInt64(m["virtual_size"] as! Int))
        #expect(image.footer.originalSize == UInt64(m["original_size"] as! Int))
        #expect(image.footer.uuid.description == m["uuid"] as! String)
        #expect(image.diskType.description == m["disk_type"] as! String)
        #expect(Int(image.footer.hidden) == m["hidden"] as! Int)
        #expect(image.footer.creatorName == m["creator_app"] as! String)
        #expect(image.footer.creatorVersionText == m["creator_version"] as! String)
        guard image.diskType != .fixed else { return }
        #expect(image.maxTableEntries == m["bat_entries"] as! Int)
        let allocated = m["allocated_blocks"] as! [String: Int]
        for b in 0..<image.maxTableEntries {
            let e = image.entry(b)
            if let want = allocated[String(b)] { #expect(Int(e) == want, "block \(b)") } else { #expect(e == VHDImage.unused) }
        }
        #expect((image.batmapHeader != nil) == (m["batmap_present"] as! Bool))
        if let bm = m["batmap"] as? [String: Any], let full = bm["full_blocks"] as? [Int] {
            for b in 0..<image.blockCount { #expect(image.batmapSaysFull(b) == full.contains(b), "batmap bit \(b)") }
        }
        if let parent = m["parent_uuid"] as? String {
            #expect(image.parentUUID.description == parent)
            #expect(image.header?.parentName == m["parent_name"] as? String)
        }
    }

    @Test func nonzeroRangesMatch() throws {
        // Range hashes pin down where a content mismatch would be.
        let name = "chain-depth3/leaf.vhd"
        let c = Fixtures.files[name]!["content"] as! [String: Any]
        let ranges = c["nonzero_ranges"] as! [String: String]
        let chain = try VHDChain(path: Fixtures.vhd + "/" + name, provider: provider)
        for (off, hash) in ranges {
            let o = UInt64(off)!
            let n = Int(min(1 << 20, chain.virtualSize - o))
            #expect(SHA256.hex(try chain.read(count: n, at: o)) == hash, "range \(off)")
        }
    }
}
