import SMCore
import Testing

/// How the journals the Python SM's collector leaves are told from this collector's own.
struct PythonGCJournalTests {
    static let node = "0f7c9a52-3b1e-4d7a-9c55-2a8e6b1d4f10"
    static let parent = "7d2e4c18-91ab-4f0e-8a3d-5c6b7e8f9a01"

    @Test func theirLVMEntriesAreRead() throws {
        let coalesce = try #require(PythonGCJournal(name: "coalesce_\(Self.node)_1", value: Array("1".utf8)))
        #expect(coalesce.kind == .coalesce && coalesce.vdi == Self.node && coalesce.parent == nil)
        // Whatever the LV holds (its value is in the name): still their relink.
        let relink = try #require(PythonGCJournal(name: "relink_\(Self.node)_1", value: Array("7 garbage".utf8)))
        #expect(relink.kind == .relink && relink.vdi == Self.node)
        let leaf = try #require(PythonGCJournal(name: "leaf_\(Self.node)_1", value: Array("\(Self.parent)\n".utf8)))
        #expect(leaf.kind == .leaf && leaf.vdi == Self.node && leaf.parent == Self.parent)
    }

    @Test func oursAndOthersAreNot() {
        // This collector's own entries: the uuid alone in the name, JSON inside.
        let ours = GCJournal.relink(node: Self.node, parent: Self.parent)
        #expect(PythonGCJournal(name: ours.name, value: ours.encoded()) == nil)
        #expect(PythonGCJournal(name: GCJournal.leaf(vdi: Self.node, parent: Self.parent).name,
                                value: GCJournal.leaf(vdi: Self.node, parent: Self.parent).encoded()) == nil)
        // A leaf journal without its parent, another type, a name without a uuid.
        #expect(PythonGCJournal(name: "leaf_\(Self.node)_1", value: Array("1".utf8)) == nil)
        #expect(PythonGCJournal(name: "clone_\(Self.node)_1", value: Array("1".utf8)) == nil)
        #expect(PythonGCJournal(name: "inflate_\(Self.node)_8388608", value: []) == nil)
        #expect(PythonGCJournal(name: "coalesce_not-a-uuid_1", value: Array("1".utf8)) == nil)
    }
}
