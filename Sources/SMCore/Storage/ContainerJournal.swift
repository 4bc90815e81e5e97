import VHD

/// A metadata journal of the VHD engine (a resize's plan) kept as a journal entry of a container,
/// so it lives where the container keeps journals (a file, an LV) and recovery finds it.
public final class ContainerJournal: MetadataJournal {
    /// The container.
    public let container: any VolumeContainer
    /// The entry's name.
    public let name: String

    /// Entry `name` of `container`.
    public init(_ container: any VolumeContainer, name: String) {
        self.container = container
        self.name = name
    }

    /// Writes the entry durably.
    public func write(_ bytes: [UInt8]) throws { try container.writeJournal(name, bytes) }

    /// The entry's bytes, nil without one.
    public func read() throws -> [UInt8]? { try container.journal(name) }

    /// Removes the entry.
    public func remove() throws { try container.removeJournal(name) }
}
