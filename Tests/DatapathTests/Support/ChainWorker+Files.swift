import SMCore
import VHD

extension ChainWorker {
    /// A chain worker over the VHD file at `leafPath`, through the directory container of its folder.
    convenience init(leafPath: String, writable: Bool, stallThreshold: UInt64 = ChainWorker.defaultStallThreshold) throws {
        try self.init(container: try DirectoryContainer(directory: StorePath.directory(of: leafPath)),
                      leaf: StorePath.basename(leafPath), writable: writable, stallThreshold: stallThreshold)
    }
}
