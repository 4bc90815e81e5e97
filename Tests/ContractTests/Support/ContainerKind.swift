import SMCore
import Testing
import TestContainers

/// The containers the contract suite runs against.
enum ContainerKind: String, Codable, Sendable, CaseIterable, CustomTestStringConvertible {
    /// A file SR: `DirectoryContainer` on ext4 on a loop device.
    case directory
    /// LV semantics: `ExtentContainer` over one preallocated file.
    case extents

    var testDescription: String { rawValue }

    /// A new container (as a new process would rebuild it) over `location`: the SR directory,
    /// or the extent group's backing file.
    func open(_ location: String) throws -> any VolumeContainer {
        switch self {
        case .directory: try DirectoryContainer(directory: location)
        case .extents: try ExtentContainer(backing: location)
        }
    }
}
