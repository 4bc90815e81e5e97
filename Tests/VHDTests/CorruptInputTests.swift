import Foundation
import TestSupport
import Testing
@testable import VHD

/// Bad input: the damaged fixtures get the verdicts blktap gives them, repair brings back the
/// repairable ones, and hostile files made here are refused with a typed `VHDError` — never a
/// crash, a hang, or a write into an image that fails its check.
@Suite struct CorruptInputTests {
    let provider = FileStoreProvider()

    static let corruptNames: [String] = Fixtures.files.filter { $0.value["role"] as? String == "corrupt" }.keys.sorted()

    /// What `vhd-util check` says about each corrupt fixture, as words one problem of the engine's
    /// report must contain (each word also appears in the manifest's message or `expected.fails`).
    static let verdictWords: [String: [String]] = [
        "corrupt/footer-bad-checksum.vhd": ["primary footer invalid: invalid checksum"],
        "corrupt/footer-bad-checksum-primary-only.vhd": ["primary footer invalid: invalid checksum"],
        "corrupt/footer-bad-checksum-backup-only.vhd": ["backup footer invalid: invalid checksum"],
        "corrupt/footer-bad-cookie.vhd": ["primary footer invalid: invalid cookie"],
        "corrupt/header-bad-checksum.vhd": ["header", "invalid checksum"],
        "corrupt/header-bad-cookie.vhd": ["header", "invalid cookie"],
        "corrupt/bat-entry-past-eof.vhd": ["block 0", "clobbers footer"],
        "corrupt/batmap-bad-checksum.vhd": ["batmap"],
        "corrupt/footer-missing-crash.vhd": ["primary footer invalid: invalid cookie"],
        "corrupt/truncated-mid-block.vhd": ["primary footer invalid: invalid cookie"],
        "corrupt/diff-missing-parent.vhd": ["deleted-parent.vhd"],
        "corrupt/diff-parent-uuid-mismatch.vhd": ["invalid parent uuid"],
    ]

    /// The same for `vhd-util check -i` where the manifest records it.
    static let ignorePrimaryWords: [String: [String]] = [
        "corrupt/truncated-mid-block.vhd": ["block 0", "clobbers footer"],
    ]

    /// The error a reader must give for the fixtures XenServer rejects.
    static let rejectKind: [String: String] = [
        "corrupt/footer-bad-checksum.vhd": "invalidFooter",
        "corrupt/footer-bad-cookie.vhd": "invalidFooter",
        "corrupt/header-bad-checksum.vhd": "invalidHeader",
        "corrupt/header-bad-cookie.vhd": "invalidHeader",
        "corrupt/bat-entry-past-eof.vhd": "invalidBAT",
        "corrupt/diff-missing-parent.vhd": "parentNotFound",
        "corrupt/diff-parent-uuid-mismatch.vhd": "parentUUIDMismatch",
    ]

    /// Which footer copy a reader falls back to for the fixtures XenServer accepts.
    static let acceptedSource: [String: FooterSource] = [
        "corrupt/footer-bad-checksum-primary-only.vhd": .backup,
        "corrupt/footer-bad-checksum-backup-only.vhd": .primary,
        "corrupt/batmap-bad-checksum.vhd": .primary,
        "corrupt/footer-missing-crash.vhd": .backup,
        "corrupt/truncated-mid-block.vhd": .backup,
    ]

    @Test func everyCorruptFixtureIsCovered() {
        #expect(Self.corruptNames.count == 12)
        for n in Self.corruptNames { #expect(Self.verdictWords[n] != nil, "\(n) has no verdict words") }
        for n in Self.corruptNames {
            let open = (Fixtures.files[n]!["expected"] as! [String: Any])["open"] as! String
            #expect(Self.rejectKind[n] != nil || Self.acceptedSource[n] != nil, "\(n): \(open)")
        }
    }

    // MARK: - Verdicts on the corrupt fixtures

    @Test(arguments: corruptNames)
    func checkGivesTheReferenceVerdict(_ name: String) throws {
        let entry = Fixtures.files[name]!
        let expected = entry["expected"] as! [String: Any]
        #expect(expected["valid"] as? Bool == false)
        let verdicts = entry["reference_verdicts"] as! [String: Any]
        let vu = verdicts["vhd-util check"] as! [String: Any]
        #expect(vu["rc"] as! Int != 0)
        let words = try #require(Self.verdictWords[name])
        let referenceText = ((vu["message"] as! String) + " " + (expected["fails"] as! String)).lowercased()
        for w in words { #expect(referenceText.contains(w.lowercased()), "table out of step with the manifest: \(w)") }

        let reports = Check.run(path: Fixtures.vhd + "/" + name, provider: provider)
        #expect(!reports.allValid, "\(name) passed the check")
        let problems = reports.allProblems
        #expect(problems.contains { p in words.allSatisfy { p.contains($0) } }, "\(name): \(problems) does not say \(words)")

        if let vi = verdicts["vhd-util check -i"] as? [String: Any] {
            var o = Check.Options()
            o.ignoreMissingPrimaryFooter = true
            let r = Check.run(path: Fixtures.vhd + "/" + name, provider: provider, options: o)
            if vi["rc"] as! Int == 0 {
                #expect(r.allValid, "\(name) with -i: \(r.allProblems)")
            } else {
                let w = try #require(Self.ignorePrimaryWords[name])
                #expect(!r.allValid)
                #expect(r.allProblems.contains { p in w.allSatisfy { p.contains($0) } }, "\(name) -i: \(r.allProblems)")
            }
        }
    }

    @Test(arguments: corruptNames)
    func openingFollowsTheManifest(_ name: String) throws {
        let entry = Fixtures.files[name]!
        let accept = (entry["crosscheck"] as! [String: Any])["accept"] as! [String]
        let path = Fixtures.vhd + "/" + name
        if let kind = Self.rejectKind[name] {
            #expect(accept == ["error"])
            do {
                let chain = try VHDChain(path: path, provider: provider)
                // libvhd opens bat-entry-past-eof and fails on the read; failing there is fine too.
                _ = try chain.read(count: Int(min(chain.virtualSize, 4 << 20)), at: 0)
                Issue.record("\(name) was read without error")
            } catch let e as VHDError {
                #expect(Hostile.kind(e) == kind, "\(name): \(e)")
            }
            // Nothing that refuses to read may be opened for writing either (on copies in memory).
            let mem = Hostile.corruptGroupInMemory()
            let before = Hostile.bytes(mem, "/corrupt/" + StorePath.basename(name))
            #expect(throws: VHDError.self) {
                let c = try VHDChain(path: "/corrupt/" + StorePath.basename(name), provider: mem, writable: true)
                try c.write([UInt8](repeating: 9, count: 512), at: 0)
            }
            #expect(Hostile.bytes(mem, "/corrupt/" + StorePath.basename(name)) == before)
        } else {
            let source = try #require(Self.acceptedSource[name])
            do {
                let chain = try VHDChain(path: path, provider: provider)
                #expect(chain.leaf.footerSource == source, "\(name)")
                _ = try chain.read(count: Int(chain.virtualSize), at: 0)
            } catch let e as VHDError {
                #expect(accept.contains("error"), "\(name) refused: \(e)")
            }
        }
    }

    /// libvhd's low-level read does not compare uuids: with the check switched off the engine
    /// must read what libvhd read (manifest `reference_verdicts`), with it on it must refuse.
    @Test func parentUUIDMismatchReadsLikeLibvhdWhenNotVerified() throws {
        let name = "corrupt/diff-parent-uuid-mismatch.vhd"
        let libvhd = (Fixtures.files[name]!["reference_verdicts"] as! [String: Any])["libvhd read (vhdio read)"] as! [String: Any]
        let chain = try VHDChain(path: Fixtures.vhd + "/" + name, provider: provider, verifyParentUUIDs: false)
        #expect(try Fixtures.contentHash(chain) == libvhd["sha256"] as! String)
        var o = Check.Options()
        o.ignoreParentUUID = true
        #expect(Check.run(path: Fixtures.vhd + "/" + name, provider: provider, options: o).allValid, "vhd-util check -I accepts it")
    }

    // MARK: - Repair

    @Test(arguments: [
        ("footer-bad-checksum-primary-only.vhd", FooterSource.backup, "content", 3584),
        ("footer-bad-checksum-backup-only.vhd", FooterSource.primary, "content", 3584),
        ("footer-missing-crash.vhd", FooterSource.backup, "content_alt", 2_101_760),
        ("batmap-bad-checksum.vhd", FooterSource.primary, "content", 3584),
    ])
    func repairMakesCheckPassAndKeepsContent(_ file: String, _ source: FooterSource, _ contentKey: String, _ size: Int) throws {
        let dir = Fixtures.copyGroup("corrupt")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/" + file
        let entry = Fixtures.files["corrupt/" + file]!
        let uuid = (entry["metadata"] as! [String: Any])["uuid"] as! String
        #expect(!Check.run(path: path, provider: provider).allValid)
        let result = try Repair.run(path: path, provider: provider)
        #expect(result.footerSource == source)
        #expect(result.footersRewritten == (file != "batmap-bad-checksum.vhd"))
        if file == "batmap-bad-checksum.vhd" { #expect(result.batmapBitsFixed >= 1) }
        let reports = Check.run(path: path, provider: provider)
        #expect(reports.allValid, "\(file) after repair: \(reports.allProblems)")
        let b = TestBytes.file(path)
        #expect(b.count == size)
        #expect(Array(b[0..<512]) == Array(b[(b.count - 512)...]), "both footer copies written")
        let chain = try VHDChain(path: path, provider: provider)
        #expect(chain.leaf.footer.uuid.description == uuid, "repair keeps the uuid")
        #expect(chain.leaf.footerSource == .primary)
        let content = entry[contentKey] as! [String: Any]
        #expect(try Fixtures.contentHash(chain) == content["sha256"] as! String, "\(file): \(contentKey)")
        // Repairing a sound image changes nothing.
        let again = try Repair.run(path: path, provider: provider)
        #expect(!again.footersRewritten && again.batmapBitsFixed == 0)
        #expect(TestBytes.file(path) == b)
    }

    @Test(arguments: ["footer-bad-checksum.vhd", "footer-bad-cookie.vhd", "header-bad-checksum.vhd",
                      "header-bad-cookie.vhd", "bat-entry-past-eof.vhd"])
    func repairRefusesWhatItCannotFixWithoutWriting(_ file: String) throws {
        let dir = Fixtures.copyGroup("corrupt")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/" + file
        let before = SHA256.hex(TestBytes.file(path))
        #expect(throws: VHDError.self) { try Repair.run(path: path, provider: provider) }
        #expect(SHA256.hex(TestBytes.file(path)) == before)
    }

    // MARK: - Hostile metadata made here

    @Test func absurdCurrentSizeIsRefused() throws {
        for type in [DiskType.dynamic, .fixed] {
            for size in [UInt64(1) << 63, Footer.maxReadableSize + (2 << 20), UInt64(1) << 50] {
                let p = MemoryStoreProvider()
                var b = try Hostile.image(p, type: type)
                Hostile.footers(&b) { f, o in f.setBE64(size, at: o + 48); f.setBE64(size, at: o + 40) }
                p.add(MemoryStore(bytes: b), at: "/h/a.vhd")
                #expect {
                    _ = try VHDImage(store: p.open("/h/a.vhd", writable: false), path: "/h/a.vhd", writable: false)
                } throws: { Hostile.isKind($0, "invalidFooter") }
                #expect(throws: VHDError.self) { _ = try VHDChain(path: "/h/a.vhd", provider: p) }
                #expect(throws: VHDError.self) { _ = try VHDChain(path: "/h/a.vhd", provider: p, writable: true) }
                let r = Check.run(path: "/h/a.vhd", provider: p)
                #expect(!r.allValid)
                #expect(Hostile.bytes(p, "/h/a.vhd") == b, "nothing written")
            }
        }
    }

    @Test func hugeOrTooSmallBATIsRefused() throws {
        for entries: UInt32 in [0xFFFF_FFFF, 0x4000_0000, 1 << 20, 0, 1] {
            let p = MemoryStoreProvider()
            var b = try Hostile.image(p, type: .dynamic, mib: 4)
            b.setBE32(entries, at: 512 + 28)
            Hostile.fixHeader(&b)
            p.add(MemoryStore(bytes: b), at: "/h/a.vhd")
            #expect {
                _ = try VHDImage(store: p.open("/h/a.vhd", writable: false), path: "/h/a.vhd", writable: false)
            } throws: { Hostile.isKind($0, "invalidBAT") }
            let problems = Check.run(path: "/h/a.vhd", provider: p).allProblems
            #expect(problems.contains { $0.contains("BAT") }, "\(entries): \(problems)")
        }
        // A table offset far past the end, or on top of the header.
        for offset: UInt64 in [1 << 40, 0xFFFF_FFFF_FFFF_0000, 512, 0] {
            let p = MemoryStoreProvider()
            var b = try Hostile.image(p, type: .dynamic, mib: 4)
            b.setBE64(offset, at: 512 + 16)
            Hostile.fixHeader(&b)
            p.add(MemoryStore(bytes: b), at: "/h/a.vhd")
            #expect(throws: VHDError.self) { _ = try VHDChain(path: "/h/a.vhd", provider: p) }
            #expect(!Check.run(path: "/h/a.vhd", provider: p).allValid)
        }
    }

    @Test func overlappingBATEntries() throws {
        let dir = Fixtures.scratch("hostile-overlap")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/o.vhd"
        try Create.dynamic(at: path, size: 8 << 20, provider: provider)
        let chain = try VHDChain(path: path, provider: provider, writable: true)
        try chain.write([UInt8](repeating: 0x11, count: 2 << 20), at: 0)
        try chain.write([UInt8](repeating: 0x22, count: 4096), at: 2 << 20)
        #expect(chain.leaf.entry(0) == 7 && chain.leaf.entry(1) == 4111)
        var b = TestBytes.file(path)
        for (entry1, what) in [(UInt32(15), "inside block 0"), (7, "same as block 0"), (4111 - 4096, "ending inside block 1")] {
            b.setBE32(entry1, at: 1536 + 4)
            TestBytes.write(b, to: path)
            let hash = SHA256.hex(b)
            // Reading is allowed (blktap reads such files), writing is not.
            let ro = try VHDImage(store: provider.open(path, writable: false), path: path, writable: false)
            #expect(ro.entry(1) == entry1)
            #expect {
                _ = try VHDImage(store: provider.open(path, writable: true), path: path, writable: true)
            } throws: { e in
                guard case let .invalidBAT(_, reason) = e as? VHDError else { return false }
                return reason.contains("overlap")
            }
            #expect(throws: VHDError.self) {
                let c = try VHDChain(path: path, provider: provider, writable: true)
                try c.write([UInt8](repeating: 0x33, count: 512), at: 6 << 20)
            }
            #expect(throws: VHDError.self) { try Resize.run(path: path, size: 10 << 20, provider: provider) }
            #expect(throws: VHDError.self) { try Repair.run(path: path, provider: provider) }
            let problems = Check.run(path: path, provider: provider).allProblems
            #expect(problems.contains { $0.contains("overlap") }, "\(what): \(problems)")
            #expect(SHA256.hex(TestBytes.file(path)) == hash, "\(what): file modified")
        }
    }

    @Test func batEntryIntoTheMetadataIsRefused() throws {
        // Sector 0 (footer copy), 1 (header), 3 (BAT), 4 (batmap header), 5 (batmap), 6 (just
        // before the first possible block: its data would overlap nothing but its bitmap is fine).
        for (entry, refused) in [(UInt32(0), true), (1, true), (3, true), (4, true), (5, true), (6, false)] {
            let p = MemoryStoreProvider()
            var b = try Hostile.image(p, type: .dynamic, mib: 4)
            b += [UInt8](repeating: 0, count: (4097 + 8) * 512)
            let footer = Array(b[0..<512])
            b.replaceSubrange((b.count - 512)..., with: footer)
            b.setBE32(entry, at: 1536)
            p.add(MemoryStore(bytes: b), at: "/h/a.vhd")
            let problems = Check.run(path: "/h/a.vhd", provider: p).allProblems
            if refused {
                #expect {
                    _ = try VHDImage(store: p.open("/h/a.vhd", writable: false), path: "/h/a.vhd", writable: false)
                } throws: { e in
                    guard case let .invalidBAT(_, reason) = e as? VHDError else { return false }
                    return reason.contains("metadata")
                }
                #expect(problems.contains { $0.contains("metadata") }, "\(entry): \(problems)")
            } else {
                #expect(throws: Never.self) { _ = try VHDChain(path: "/h/a.vhd", provider: p) }
            }
        }
    }

    @Test func hostileLocatorsAreRefused() throws {
        let cases: [(String, (inout [UInt8]) -> Void)] = [
            ("data_offset past EOF", { $0.setBE64(1 << 40, at: 512 + 576 + 16) }),
            ("data_offset near 2^64", { $0.setBE64(0xFFFF_FFFF_FFFF_FE00, at: 512 + 576 + 16) }),
            ("data_offset 2^64-4", { $0.setBE64(0xFFFF_FFFF_FFFF_FFFC, at: 512 + 576 + 16) }),
            ("data_len 2^31", { $0.setBE32(1 << 31, at: 512 + 576 + 8) }),
            ("data_len > data_space", { $0.setBE32(513, at: 512 + 576 + 8) }),
            ("data_space not in sectors or bytes", { $0.setBE32(1000, at: 512 + 576 + 4) }),
            ("data_space huge", { $0.setBE32(0xFFFF_FE00, at: 512 + 576 + 4) }),
            ("unknown code", { $0.setBE32(0x4142_4344, at: 512 + 576) }),
        ]
        for (what, mutate) in cases {
            let p = MemoryStoreProvider()
            try Create.dynamic(at: "/h/base.vhd", size: 4 << 20, provider: p)
            try Snapshot.create(child: "/h/c.vhd", parent: "/h/base.vhd", provider: p)
            var b = Hostile.bytes(p, "/h/c.vhd")
            mutate(&b)
            Hostile.fixHeader(&b)
            p.add(MemoryStore(bytes: b), at: "/h/c.vhd")
            do {
                let chain = try VHDChain(path: "/h/c.vhd", provider: p)
                // Only an unknown code in a slot after a good one may still resolve; then it must read.
                #expect(what == "unknown code", "\(what): opened")
                _ = try chain.read(count: 4096, at: 0)
            } catch let e as VHDError {
                #expect(["invalidLocator", "parentNotFound"].contains(Hostile.kind(e)), "\(what): \(e)")
            }
            #expect(throws: VHDError.self, "\(what)") { _ = try VHDChain(path: "/h/c.vhd", provider: p, writable: true) }
            #expect(!Check.run(path: "/h/c.vhd", provider: p).allValid, "\(what)")
            _ = Scan.entry(name: "c.vhd", path: "/h/c.vhd", provider: p)
            #expect(Hostile.bytes(p, "/h/c.vhd") == b, "\(what): nothing written")
        }
    }

    @Test func locatorCycleIsDetected() throws {
        let p = MemoryStoreProvider()
        try Create.dynamic(at: "/c/x.vhd", size: 4 << 20, provider: p)
        try Snapshot.create(child: "/c/a.vhd", parent: "/c/x.vhd", provider: p)
        var o = Snapshot.Options()
        o.linkEmptyParent = true
        try Snapshot.create(child: "/c/b.vhd", parent: "/c/a.vhd", provider: p, options: o)
        try Relink.run(child: "/c/a.vhd", newParent: "/c/b.vhd", provider: p)   // a -> b -> a
        for leaf in ["/c/a.vhd", "/c/b.vhd"] {
            #expect { _ = try VHDChain(path: leaf, provider: p) } throws: { Hostile.isKind($0, "chainCycle") }
            #expect { _ = try ImageInfo.of(path: leaf, provider: p, withDepth: true) } throws: {
                Hostile.isKind($0, "chainCycle")
            }
            var co = Check.Options()
            co.parents = true
            let problems = Check.run(path: leaf, provider: p, options: co).allProblems
            #expect(problems.contains { $0.contains("cycle") }, "\(problems)")
        }
        var limited = Snapshot.Options()
        limited.depthLimit = 10
        limited.linkEmptyParent = true   // without -e the empty-parent walk loops (next test)
        #expect { try Snapshot.create(child: "/c/d.vhd", parent: "/c/a.vhd", provider: p, options: limited) } throws: {
            Hostile.isKind($0, "chainCycle")
        }
        #expect(!p.exists("/c/d.vhd"))
    }

    /// Snapshot skips empty differencing parents (`vhd-util snapshot` without -e) by walking up
    /// the locators, with no cycle detection: over an empty a -> b -> a cycle it loops forever.
    /// The bounded provider turns the endless loop into an error so the test ends.
    @Test func snapshotOverAnEmptyLocatorCycleTerminates() throws {
        let inner = MemoryStoreProvider()
        try Create.dynamic(at: "/c/x.vhd", size: 4 << 20, provider: inner)
        try Snapshot.create(child: "/c/a.vhd", parent: "/c/x.vhd", provider: inner)
        var o = Snapshot.Options()
        o.linkEmptyParent = true
        try Snapshot.create(child: "/c/b.vhd", parent: "/c/a.vhd", provider: inner, options: o)
        try Relink.run(child: "/c/a.vhd", newParent: "/c/b.vhd", provider: inner)
        let p = BoundedProvider(inner, opens: 500)
        #expect {
            try Snapshot.create(child: "/c/d.vhd", parent: "/c/a.vhd", provider: p)
        } throws: { e in
            (e as? VHDError).map { Hostile.kind($0) == "chainCycle" } ?? false
        }
        #expect(p.opens < 500, "Snapshot.create opened \(p.opens) images walking the cycle")
    }

    @Test func chainDeeperThanTheLimit() throws {
        let p = MemoryStoreProvider()
        try Create.dynamic(at: "/d/0.vhd", size: 4 << 20, provider: p)
        var o = Snapshot.Options()
        o.linkEmptyParent = true
        for i in 1...65 { try Snapshot.create(child: "/d/\(i).vhd", parent: "/d/\(i - 1).vhd", provider: p, options: o) }
        #expect(try VHDChain(path: "/d/5.vhd", provider: p, maxDepth: 6).depth == 6)
        #expect { _ = try VHDChain(path: "/d/5.vhd", provider: p, maxDepth: 5) } throws: {
            $0 as? VHDError == .chainTooDeep(path: "/d/5.vhd", limit: 5)
        }
        #expect(try VHDChain(path: "/d/63.vhd", provider: p).depth == 64)
        #expect { _ = try VHDChain(path: "/d/64.vhd", provider: p) } throws: { Hostile.isKind($0, "chainTooDeep") }
        var limited = o
        limited.depthLimit = 6
        #expect { try Snapshot.create(child: "/d/x.vhd", parent: "/d/5.vhd", provider: p, options: limited) } throws: {
            Hostile.isKind($0, "chainTooDeep")
        }
        #expect(!p.exists("/d/x.vhd"))
        limited.depthLimit = 7
        #expect(try Snapshot.create(child: "/d/y.vhd", parent: "/d/5.vhd", provider: p, options: limited).depth == 7)
    }

    @Test func missingParent() throws {
        let p = MemoryStoreProvider()
        try Create.dynamic(at: "/m/p.vhd", size: 4 << 20, provider: p)
        try Snapshot.create(child: "/m/c.vhd", parent: "/m/p.vhd", provider: p)
        let before = Hostile.bytes(p, "/m/c.vhd")
        try p.remove("/m/p.vhd")
        #expect { _ = try VHDChain(path: "/m/c.vhd", provider: p) } throws: { e in
            guard case let .parentNotFound(path, tried) = e as? VHDError else { return false }
            return path == "/m/c.vhd" && tried.contains("/m/p.vhd")
        }
        #expect(throws: VHDError.self) { _ = try VHDChain(path: "/m/c.vhd", provider: p, writable: true) }
        #expect(throws: VHDError.self) { try Coalesce.run(child: "/m/c.vhd", provider: p) }
        let problems = Check.run(path: "/m/c.vhd", provider: p).allProblems
        #expect(problems.contains { $0.contains("p.vhd") }, "\(problems)")
        #expect(try ImageInfo.of(path: "/m/c.vhd", provider: p).parentPath == nil)
        #expect(Hostile.bytes(p, "/m/c.vhd") == before)
    }

    // MARK: - Truncation

    @Test func truncatedAtEveryLengthThrowsOrReadsCorrectly() throws {
        let p = MemoryStoreProvider()
        // A dynamic image with data at both ends of its only block, a fixed one, a differencing one.
        try Create.dynamic(at: "/t/d.vhd", size: 2 << 20, provider: p)
        try Create.fixed(at: "/t/f.vhd", size: 2 << 20, provider: p)
        for path in ["/t/d.vhd", "/t/f.vhd"] {
            let c = try VHDChain(path: path, provider: p, writable: true)
            try c.write(Pat.pat("t", 0, 16), at: 0)
            try c.write(Pat.pat("t", 4090, 6), at: 4090 * 512)
        }
        try Snapshot.create(child: "/t/c.vhd", parent: "/t/d.vhd", provider: p)
        try VHDChain(path: "/t/c.vhd", provider: p, writable: true).write(Pat.pat("c", 4, 4), at: 4 * 512)
        var opened = 0, refused = 0
        for path in ["/t/d.vhd", "/t/f.vhd", "/t/c.vhd"] {
            let full = Hostile.bytes(p, path)
            let original = try VHDChain(path: path, provider: p)
            let head = try original.read(count: 64 << 10, at: 0), tail = try original.read(count: 64 << 10, at: (2 << 20) - (64 << 10))
            let lengths = Array(0...min(4096, full.count)) + Array(max(4097, full.count - 4096)...full.count)
            for n in lengths {
                let q = MemoryStoreProvider()
                if path == "/t/c.vhd" { q.add(MemoryStore(bytes: Hostile.bytes(p, "/t/d.vhd")), at: "/t/d.vhd") }
                q.add(PrefixStore(full, length: n), at: path)
                do {
                    let chain = try VHDChain(path: path, provider: q)
                    #expect(chain.virtualSize == 2 << 20)
                    #expect(try chain.read(count: 64 << 10, at: 0) == head, "\(path) cut at \(n)")
                    #expect(try chain.read(count: 64 << 10, at: (2 << 20) - (64 << 10)) == tail, "\(path) cut at \(n)")
                    opened += 1
                    #expect(n >= full.count - 512, "\(path) cut at \(n) of \(full.count) opened")
                } catch is VHDError {
                    refused += 1
                } catch {
                    Issue.record("\(path) cut at \(n): \(error)")
                }
                let valid = Check.run(path: path, provider: q).allValid
                // One byte short is the 511-byte footer of pre-2004 images: valid for every type.
                #expect(valid == (n == full.count || n == full.count - 1), "\(path) cut at \(n): check says \(valid)")
                _ = Scan.entry(name: "x", path: path, provider: q)
            }
        }
        #expect(opened > 1000 && refused > 10000)
    }

    // MARK: - Random damage

    /// Seeded random damage to the metadata of a dynamic, a differencing and a fixed image:
    /// random bytes, bit flips and boundary values, half the time with the checksums fixed so the
    /// damage reaches past the first gate. Scan, open, read, check, info and a write must each
    /// either work or throw `VHDError`. Runs in a child process so that a crash is reported
    /// (with the iteration that caused it) instead of killing the test run.
    @Test func randomMetadataDamageNeverCrashes() async {
        // The child logs each iteration to a file named after this process, read back on failure.
        let logPath = Fuzz.logPath(pid: getpid())
        defer { try? FileManager.default.removeItem(atPath: logPath) }
        await #expect(processExitsWith: .success) {
            let log = Fuzz.logPath(pid: getppid())
            _ = FileManager.default.createFile(atPath: log, contents: nil)
            let handle = FileHandle(forWritingAtPath: log)
            if let f = Fuzz.run(seed: 0x5eed_2026, iterations: 1200, logTo: handle) {
                handle?.write(Data(("FAIL " + f + "\n").utf8))
                exit(1)
            }
        }
        if let text = try? String(contentsOfFile: logPath, encoding: .utf8),
           let last = text.split(separator: "\n").last, !text.hasSuffix("done\n") {
            Issue.record(Comment(rawValue: "fuzz stopped at: \(last)"))
        }
    }

    /// The same damage without the child process, restricted to random bytes and bit flips
    /// (what a disk or a bad copy does), so that failures show up as ordinary issues.
    @Test func randomByteFlipsInProcess() {
        var stats = Fuzz.Stats()
        if let f = Fuzz.run(seed: 0xf11b_5eed, iterations: 400, boundaryValues: false, stats: &stats) { Issue.record(Comment(rawValue: f)) }
        // The damage must reach every layer: some images refused, some read, some written and read back.
        #expect(stats.refused > 50 && stats.read > 100 && stats.written > 50, "\(stats)")
    }

    // MARK: - Crashes found by this suite (each in a child process)

    /// Footer.decode builds the footer with `Footer(type:size:)`, which computes
    /// `Geometry.forSize(size)`; `(size + 511) / 512` overflows for current_size > 2^64-512.
    @Test func footerWithMaximalCurrentSizeDoesNotCrash() async {
        await #expect(processExitsWith: .success) {
            for type in [DiskType.dynamic, .fixed] {
                let p = MemoryStoreProvider()
                var b = try Hostile.image(p, type: type)
                Hostile.footers(&b) { f, o in f.setBE64(UInt64.max, at: o + 48) }
                p.add(MemoryStore(bytes: b), at: "/h/a.vhd")
                do {
                    _ = try VHDImage(store: p.open("/h/a.vhd", writable: false), path: "/h/a.vhd", writable: false)
                    exit(2)   // must be refused
                } catch is VHDError {}
                _ = Check.run(path: "/h/a.vhd", provider: p)
            }
        }
    }

    /// Scan.entry decodes the header from the first 1536 bytes without VHDImage's validation
    /// and computes `h.tableOffset + h.batBytes`, which overflows for a table offset near 2^64.
    @Test func scanWithTableOffsetNear2To64DoesNotCrash() async {
        await #expect(processExitsWith: .success) {
            let p = MemoryStoreProvider()
            var b = try Hostile.image(p, type: .dynamic, mib: 4)
            b.setBE64(0xFFFF_FFFF_FFFF_FE00, at: 512 + 16)
            Hostile.fixHeader(&b)
            p.add(MemoryStore(bytes: b), at: "/h/a.vhd")
            let e = Scan.entry(name: "a.vhd", path: "/h/a.vhd", provider: p)
            if e.uuid == nil && e.error == nil { exit(2) }
        }
    }

    /// Snapshot.chainDepth opens ancestors with `loadBAT: false`, which skips the locator
    /// validation, then ParentResolver reads `data_len` bytes at the unvalidated `data_offset`:
    /// the store's bounds check `offset + count` overflows for an offset within data_len of 2^64.
    @Test func chainDepthWithLocatorOffsetNear2To64DoesNotCrash() async {
        await #expect(processExitsWith: .success) {
            let p = MemoryStoreProvider()
            try Create.dynamic(at: "/h/x.vhd", size: 4 << 20, provider: p)
            try Snapshot.create(child: "/h/p.vhd", parent: "/h/x.vhd", provider: p)
            var b = Hostile.bytes(p, "/h/p.vhd")
            b.setBE64(0xFFFF_FFFF_FFFF_FFFC, at: 512 + 576 + 16)
            Hostile.fixHeader(&b)
            p.add(MemoryStore(bytes: b), at: "/h/p.vhd")
            var o = Snapshot.Options()
            o.linkEmptyParent = true
            o.depthLimit = 8
            do {
                try Snapshot.create(child: "/h/c.vhd", parent: "/h/p.vhd", provider: p, options: o)
                exit(2)   // p's locators are unusable: must be refused
            } catch is VHDError {}
        }
    }

    /// Resize.fastLimit computes `UInt64(mapSectors) * 512 * 8 * blockSize`, which overflows for a
    /// batmap header claiming >= 2^31 sectors. The batmap header has no checksum of its own, so one
    /// damaged byte at offset 16 of it is enough; ImageInfo.of (vhd query/info) reaches it read-only.
    @Test func imageInfoWithHugeBatmapSizeDoesNotCrash() async {
        await #expect(processExitsWith: .success) {
            let p = MemoryStoreProvider()
            var b = try Hostile.image(p, type: .dynamic, mib: 4)
            b[2048 + 16] = 0x80   // batmap_size 0x80000001
            p.add(MemoryStore(bytes: b), at: "/h/a.vhd")
            let image = try VHDImage(store: p.open("/h/a.vhd", writable: false), path: "/h/a.vhd", writable: false)
            _ = Resize.fastLimit(image)
            _ = try? ImageInfo.of(path: "/h/a.vhd", provider: p)
        }
    }

    /// The same overflow reached through `ImageInfo.of(withDepth:)` of a child of the damaged image.
    @Test func imageInfoDepthWithLocatorOffsetNear2To64DoesNotCrash() async {
        await #expect(processExitsWith: .success) {
            let p = MemoryStoreProvider()
            try Create.dynamic(at: "/h/x.vhd", size: 4 << 20, provider: p)
            try Snapshot.create(child: "/h/p.vhd", parent: "/h/x.vhd", provider: p)
            var o = Snapshot.Options()
            o.linkEmptyParent = true
            try Snapshot.create(child: "/h/c.vhd", parent: "/h/p.vhd", provider: p, options: o)
            var b = Hostile.bytes(p, "/h/p.vhd")
            b.setBE64(0xFFFF_FFFF_FFFF_FFFC, at: 512 + 576 + 16)
            Hostile.fixHeader(&b)
            p.add(MemoryStore(bytes: b), at: "/h/p.vhd")
            do {
                _ = try ImageInfo.of(path: "/h/c.vhd", provider: p, withDepth: true)
                exit(2)
            } catch is VHDError {}
        }
    }

    // MARK: - Images whose check fails are not written

    @Test func writableOpenOfAnImageWithInvalidBatmapChangesNothing() throws {
        let dir = Fixtures.copyGroup("corrupt")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/batmap-bad-checksum.vhd"
        let before = SHA256.hex(TestBytes.file(path))
        #expect {
            _ = try VHDImage(store: provider.open(path, writable: true), path: path, writable: true)
        } throws: { Hostile.isKind($0, "invalidBatmap") }
        #expect(throws: VHDError.self) {
            let c = try VHDChain(path: path, provider: provider, writable: true)
            try c.write([UInt8](repeating: 1, count: 512), at: 0)
        }
        #expect(throws: VHDError.self) { try Resize.run(path: path, size: 4 << 20, provider: provider) }
        #expect(throws: VHDError.self) { try Resize.run(path: path, size: 2 << 20, provider: provider) }
        // A child can be made over it (read-only use), but coalescing into it must refuse.
        try Snapshot.create(child: dir + "/child.vhd", parent: path, provider: provider)
        try VHDChain(path: dir + "/child.vhd", provider: provider, writable: true).write([UInt8](repeating: 7, count: 4096), at: 8192)
        let child = SHA256.hex(TestBytes.file(dir + "/child.vhd"))
        #expect(throws: VHDError.self) { try Coalesce.run(child: dir + "/child.vhd", provider: provider) }
        #expect(SHA256.hex(TestBytes.file(path)) == before, "image with an invalid batmap was modified")
        #expect(SHA256.hex(TestBytes.file(dir + "/child.vhd")) == child)
        // The read-only view ignores the batmap, as libvhd does.
        let ro = try VHDChain(path: path, provider: provider)
        #expect(!ro.leaf.batmapValid)
        #expect(try ro.read(count: 512, at: 0) == [UInt8](repeating: 0, count: 512))
    }

    @Test func coalesceIntoAParentWithOverlappingBlocksChangesNothing() throws {
        let dir = Fixtures.scratch("hostile-coalesce")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let parent = dir + "/p.vhd"
        try Create.dynamic(at: parent, size: 8 << 20, provider: provider)
        let c = try VHDChain(path: parent, provider: provider, writable: true)
        try c.write([UInt8](repeating: 0x11, count: 8192), at: 0)
        try c.write([UInt8](repeating: 0x22, count: 8192), at: 2 << 20)
        try Snapshot.create(child: dir + "/c.vhd", parent: parent, provider: provider)
        try VHDChain(path: dir + "/c.vhd", provider: provider, writable: true).write([UInt8](repeating: 0x33, count: 8192), at: 6 << 20)
        var b = TestBytes.file(parent)
        b.setBE32(c.leaf.entry(0) + 8, at: 1536 + 4)   // block 1 now overlaps block 0
        TestBytes.write(b, to: parent)
        let before = SHA256.hex(b), child = SHA256.hex(TestBytes.file(dir + "/c.vhd"))
        #expect(throws: VHDError.self) { try Coalesce.run(child: dir + "/c.vhd", provider: provider) }
        #expect(SHA256.hex(TestBytes.file(parent)) == before)
        #expect(SHA256.hex(TestBytes.file(dir + "/c.vhd")) == child)
        // Relinking a child is a write into the child only; the damaged parent stays as it is.
        try Relink.run(child: dir + "/c.vhd", newParent: parent, provider: provider)
        #expect(SHA256.hex(TestBytes.file(parent)) == before)
    }
}

// MARK: - Helpers

/// Building and damaging small images in memory.
enum Hostile {
    /// A fresh tap image (dynamic/fixed) at /h/a.vhd; its bytes.
    static func image(_ p: MemoryStoreProvider, type: DiskType, mib: Int = 2) throws -> [UInt8] {
        if type == .fixed {
            try Create.fixed(at: "/h/a.vhd", size: UInt64(mib) << 20, provider: p)
        } else {
            try Create.dynamic(at: "/h/a.vhd", size: UInt64(mib) << 20, provider: p)
        }
        return bytes(p, "/h/a.vhd")
    }

    static func bytes(_ p: MemoryStoreProvider, _ path: String) -> [UInt8] {
        var out: [UInt8] = []
        if let s = p.stores[StorePath.normalize(path)] {
            out = (try? s.read(count: Int(s.size), at: 0)) ?? []
        }
        return out
    }

    /// Applies `change(bytes, footerOffset)` to every footer copy (EOF-512, and 0 if it holds one) and fixes checksums.
    static func footers(_ b: inout [UInt8], _ change: (inout [UInt8], Int) -> Void) {
        var offsets = [b.count - 512]
        if b.count >= 1024, Array(b[0..<8]) == Footer.cookie { offsets.append(0) }
        for o in offsets {
            change(&b, o)
            fixFooter(&b, at: o)
        }
    }

    static func fixFooter(_ b: inout [UInt8], at o: Int) {
        b.setBE32(vhdChecksum(Array(b[o..<o + 512]), skipping: 64..<68), at: o + 64)
    }

    static func fixHeader(_ b: inout [UInt8], at o: Int = 512) {
        b.setBE32(vhdChecksum(Array(b[o..<o + 1024]), skipping: 36..<40), at: o + 36)
    }

    /// Whether `e` is a VHDError of case `kind`.
    static func isKind(_ e: any Error, _ kind: String) -> Bool {
        guard let v = e as? VHDError else { return false }
        return self.kind(v) == kind
    }

    /// The corrupt fixture folder copied into memory under /corrupt.
    static func corruptGroupInMemory() -> MemoryStoreProvider {
        let p = MemoryStoreProvider()
        let dir = Fixtures.vhd + "/corrupt"
        for name in (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [] {
            p.add(MemoryStore(bytes: TestBytes.file(dir + "/" + name)), at: "/corrupt/" + name)
        }
        return p
    }

    /// The case name of a VHDError.
    static func kind(_ e: VHDError) -> String {
        switch e {
        case .io: "io"
        case .shortRead: "shortRead"
        case .readOnly: "readOnly"
        case .noSpace: "noSpace"
        case .invalidFooter: "invalidFooter"
        case .invalidHeader: "invalidHeader"
        case .invalidBAT: "invalidBAT"
        case .invalidBatmap: "invalidBatmap"
        case .invalidLocator: "invalidLocator"
        case .parentNotFound: "parentNotFound"
        case .parentUUIDMismatch: "parentUUIDMismatch"
        case .chainTooDeep: "chainTooDeep"
        case .chainCycle: "chainCycle"
        case .unsupported: "unsupported"
        case .outOfRange: "outOfRange"
        case .invalidArgument: "invalidArgument"
        case .checkFailed: "checkFailed"
        case .cancelled: "cancelled"
        }
    }
}

/// The first `length` bytes of `base`, read-only, without copying them (truncation tests).
final class PrefixStore: BlockStore {
    let base: [UInt8]
    let length: Int
    init(_ base: [UInt8], length: Int) { self.base = base; self.length = length }
    var size: UInt64 { UInt64(length) }
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws {
        guard offset <= UInt64(length), UInt64(buffer.count) <= UInt64(length) - offset else {
            throw VHDError.shortRead(path: "prefix", offset: offset, count: buffer.count)
        }
        base.withUnsafeBytes { src in
            buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: src[Int(offset)..<Int(offset) + buffer.count]))
        }
    }
    func write(_ buffer: UnsafeRawBufferPointer, at offset: UInt64) throws { throw VHDError.readOnly(path: "prefix") }
    func resize(to size: UInt64) throws { throw VHDError.readOnly(path: "prefix") }
    func sync() throws {}
}

/// A provider that gives up after a number of opens (turns an endless walk into an error).
final class BoundedProvider: StoreProvider {
    struct Exhausted: Error {}
    let inner: MemoryStoreProvider
    let limit: Int
    private(set) var opens = 0
    init(_ inner: MemoryStoreProvider, opens: Int) { self.inner = inner; self.limit = opens }
    func open(_ path: String, writable: Bool) throws -> any BlockStore {
        opens += 1
        guard opens < limit else { throw Exhausted() }
        return try inner.open(path, writable: writable)
    }
    func create(_ path: String) throws -> any BlockStore { try inner.create(path) }
    func exists(_ path: String) -> Bool { inner.exists(path) }
    func remove(_ path: String) throws { try inner.remove(path) }
    func rename(_ from: String, to: String) throws { try inner.rename(from, to: to) }
    func modificationTime(_ path: String) -> Int? { inner.modificationTime(path) }
    func canonical(_ path: String) -> String { inner.canonical(path) }
    func list(_ directory: String) throws -> [String] { try inner.list(directory) }
}

/// Seeded metadata damage (see `randomMetadataDamageNeverCrashes`).
enum Fuzz {
    struct RNG {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        mutating func int(_ n: Int) -> Int { Int(next() % UInt64(n)) }
    }

    struct Target {
        var path: String
        var bytes: [UInt8]
        var regions: [Range<Int>]
    }

    /// Base images: dynamic (full block 0, sectors in block 1), a child over it, a fixed one.
    static func targets() throws -> (MemoryStoreProvider, [Target]) {
        let p = MemoryStoreProvider()
        try Create.dynamic(at: "/f/base.vhd", size: 4 << 20, provider: p)
        var c = try VHDChain(path: "/f/base.vhd", provider: p, writable: true)
        try c.write([UInt8](repeating: 0xb0, count: 2 << 20), at: 0)
        try c.write([UInt8](repeating: 0xb1, count: 3 * 512), at: (2 << 20) + 5 * 512)
        try Snapshot.create(child: "/f/child.vhd", parent: "/f/base.vhd", provider: p)
        c = try VHDChain(path: "/f/child.vhd", provider: p, writable: true)
        try c.write([UInt8](repeating: 0xc1, count: 4 * 512), at: (2 << 20) + 3 * 512)
        try c.write([UInt8](repeating: 0xc0, count: 512), at: 100 * 512)
        try Create.fixed(at: "/f/fixed.vhd", size: 2 << 20, provider: p)
        try VHDChain(path: "/f/fixed.vhd", provider: p, writable: true).write([UInt8](repeating: 0xf0, count: 1024), at: 4096)
        var out: [Target] = []
        for path in ["/f/base.vhd", "/f/child.vhd", "/f/fixed.vhd"] {
            let b = Hostile.bytes(p, path)
            var regions = [b.count - 512..<b.count]
            if path != "/f/fixed.vhd" {
                let image = try VHDImage(store: MemoryStore(bytes: b), path: path, writable: false)
                regions.append(0..<Int(image.endOfMetadata))
                for blk in 0..<image.maxTableEntries where image.entry(blk) != VHDImage.unused {
                    let at = Int(image.entry(blk)) * 512
                    regions.append(at..<at + 512)   // the block's bitmap
                }
            }
            out.append(Target(path: path, bytes: b, regions: regions))
        }
        return (p, out)
    }

    static let boundary64: [UInt64] = [0, 1, 511, 512, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF, 1 << 32, 1 << 41,
                                       0x7FFF_FFFF_FFFF_FFFF, 0x8000_0000_0000_0000, UInt64.max - 511, UInt64.max]

    /// Runs the campaign; returns a description of the first failure, or nil.
    static func logPath(pid: Int32) -> String { NSTemporaryDirectory() + "swiftsm-fuzz-\(pid).log" }

    /// How far the damaged images got.
    struct Stats: CustomStringConvertible {
        var refused = 0, read = 0, written = 0
        var description: String { "refused \(refused), read \(read), written and read back \(written)" }
    }

    static func run(seed: UInt64, iterations: Int, boundaryValues: Bool = true, logTo handle: FileHandle? = nil,
                    avoid: ((String, Int, Int) -> Bool)? = nil) -> String? {
        var stats = Stats()
        return run(seed: seed, iterations: iterations, boundaryValues: boundaryValues, logTo: handle, avoid: avoid, stats: &stats)
    }

    static func run(seed: UInt64, iterations: Int, boundaryValues: Bool = true, logTo handle: FileHandle? = nil,
                    avoid: ((String, Int, Int) -> Bool)? = nil, stats: inout Stats) -> String? {
        guard let built = try? targets() else { return "could not build the base images" }
        let targets = built.1
        var rng = RNG(state: seed)
        for i in 0..<iterations {
            let t = targets[rng.int(targets.count)]
            var b = t.bytes
            var log: [String] = []
            for _ in 0..<(1 + rng.int(4)) {
                let region = t.regions[rng.int(t.regions.count)]
                let at = region.lowerBound + rng.int(region.count)
                if let avoid, avoid(t.path, at, b.count) { continue }
                switch boundaryValues ? rng.int(4) : rng.int(2) {
                case 0:
                    b[at] = UInt8(truncatingIfNeeded: rng.next()); log.append("byte@\(at)")
                case 1:
                    b[at] ^= 1 << UInt8(rng.int(8)); log.append("bit@\(at)")
                case 2:
                    let o = at & ~3
                    if o + 4 <= b.count { b.setBE32(UInt32(truncatingIfNeeded: boundary64[rng.int(boundary64.count)]), at: o) }
                    log.append("u32@\(o)")
                default:
                    let o = at & ~7
                    if o + 8 <= b.count { b.setBE64(boundary64[rng.int(boundary64.count)], at: o) }
                    log.append("u64@\(o)")
                }
            }
            if rng.int(2) == 0 {
                // Fix the checksums so the damage gets past them.
                if t.path != "/f/fixed.vhd" { Hostile.fixFooter(&b, at: 0); Hostile.fixHeader(&b) }
                Hostile.fixFooter(&b, at: b.count - 512)
                log.append("checksums fixed")
            }
            let what = "iteration \(i) \(t.path) \(log.joined(separator: ","))"
            handle?.write(Data((what + "\n").utf8))
            let p = MemoryStoreProvider()
            for other in targets where other.path != t.path { p.add(MemoryStore(bytes: other.bytes), at: other.path) }
            p.add(MemoryStore(bytes: b), at: t.path)
            if let f = exercise(t.path, p, &rng, &stats) { return what + ": " + f }
        }
        handle?.write(Data("done\n".utf8))
        return nil
    }

    /// Every entry point over the damaged image; nil when each either worked or threw VHDError.
    static func exercise(_ path: String, _ p: MemoryStoreProvider, _ rng: inout RNG, _ stats: inout Stats) -> String? {
        func guarded(_ step: String, _ body: () throws -> Void) -> String? {
            do { try body() } catch is VHDError {} catch { return "\(step) threw \(type(of: error)): \(error)" }
            return nil
        }
        _ = Scan.entry(name: "x.vhd", path: path, provider: p)
        var o = Check.Options()
        o.parents = true
        _ = Check.run(path: path, provider: p, options: o)
        if let f = guarded("info", { _ = try ImageInfo.of(path: path, provider: p, withDepth: true) }) { return f }
        var opened = false
        if let f = guarded("read", {
            let chain = try VHDChain(path: path, provider: p)
            opened = true
            let size = chain.virtualSize
            _ = try chain.read(count: Int(min(size, 64 << 10)), at: 0)
            if size > 4 << 20 { _ = try chain.read(count: 4096, at: size - 4096) }
            if size >= (2 << 20) + (64 << 10) { _ = try chain.read(count: 64 << 10, at: 2 << 20) }
            _ = try AllocationMap.extents(chain, in: 0..<min(size, 4 << 20))
            stats.read += 1
        }) { return f }
        if !opened { stats.refused += 1 }
        // Writes must read back, whatever the metadata looked like when the image was accepted.
        return guarded("write", {
            let chain = try VHDChain(path: path, provider: p, writable: true)
            guard chain.leaf.blockSize <= 2 << 20, chain.virtualSize <= 64 << 20, chain.virtualSize >= 8192 else { return }
            let at = UInt64(rng.int(Int(chain.virtualSize / 512) - 8)) * 512
            let data = (0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 1) }
            try chain.write(data, at: at)
            try chain.flush()
            let again = try VHDChain(path: path, provider: p)
            if try again.read(count: 4096, at: at) != data { throw ReadBack(at: at) }
            stats.written += 1
        })
    }

    struct ReadBack: Error { var at: UInt64 }
}
