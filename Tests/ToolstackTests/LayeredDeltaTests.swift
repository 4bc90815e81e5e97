import Testing
@testable import Toolstack

/// Which images of two chains lie above the ones they share: what a delta copy reads.
@Suite struct LayeredDeltaTests {
    @Test func aSnapshotSharesEverythingBelowTheTwoLeaves() {
        let above = LayeredDelta.layersAboveCommon((source: ["s0", "p1", "p0"], base: ["b0", "p1", "p0"]))
        #expect(above?.source == 1 && above?.base == 1)
    }

    @Test func anOlderSnapshotLeavesTwoImagesAboveOnTheSourceSide() {
        let above = LayeredDelta.layersAboveCommon((source: ["s0", "p2", "p1"], base: ["b0", "p1"]))
        #expect(above?.source == 2 && above?.base == 1)
    }

    @Test func theBaseItselfOnTheSourcesChainHasNothingAboveIt() {
        let above = LayeredDelta.layersAboveCommon((source: ["s0", "p1"], base: ["p1"]))
        #expect(above?.source == 1 && above?.base == 0)
    }

    @Test func chainsThatShareNothingOrAreUnknownGiveNoAnswer() {
        #expect(LayeredDelta.layersAboveCommon((source: ["s0", "p0"], base: ["b0", "q0"])) == nil)
        #expect(LayeredDelta.layersAboveCommon((source: [], base: ["b0"])) == nil)
        #expect(LayeredDelta.layersAboveCommon((source: ["s0"], base: [])) == nil)
        // The same image at another depth is not a shared root: only the roots' run counts.
        #expect(LayeredDelta.layersAboveCommon((source: ["x", "s0"], base: ["b0", "x"])) == nil)
    }
}
