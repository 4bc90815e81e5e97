/// A store that can say where its data and holes are (a sparse file: SEEK_DATA / SEEK_HOLE), so
/// copies can skip what was never written.
public protocol HoleMapStore: BlockStore {
    /// The next offset at or after `offset` that holds data, nil past the last data.
    func nextData(from offset: UInt64) -> UInt64?
    /// The next hole at or after `offset`; the end of the store if none.
    func nextHole(from offset: UInt64) -> UInt64
}
