import SMCore
import VHD

/// A container that forwards to another, counting every change it makes (its own operations,
/// and the writes through stores its provider opens) as steps of a `StepCounter`: a process
/// can thus be made to die after any step of an operation.
final class CrashingContainer: VolumeContainer {
    let inner: any VolumeContainer
    let counter: StepCounter
    let provider: any StoreProvider

    init(_ inner: any VolumeContainer, crashAfter: Int?) {
        self.inner = inner
        counter = StepCounter(crashAfter: crashAfter)
        provider = CountingProvider(inner.provider, counter)
    }

    private func step<T>(_ body: () throws -> T) rethrows -> T {
        let r = try body()
        counter.step()
        return r
    }

    var sizingPolicy: SizingPolicy { inner.sizingPolicy }
    var naming: VolumeNaming { inner.naming }
    var fastResizeLimit: UInt64 { inner.fastResizeLimit }
    func path(of name: String) -> String { inner.path(of: name) }
    func list() throws -> [String] { try inner.list() }
    func exists(_ name: String) -> Bool { inner.exists(name) }
    func create(_ name: String, size: UInt64) throws -> any BlockStore {
        CountingStore(try step { try inner.create(name, size: size) }, counter)
    }
    func open(_ name: String, writable: Bool) throws -> any BlockStore { try provider.open(path(of: name), writable: writable) }
    func resize(_ name: String, to size: UInt64) throws { try step { try inner.resize(name, to: size) } }
    func remove(_ name: String) throws { try step { try inner.remove(name) } }
    func rename(_ name: String, to: String) throws { try step { try inner.rename(name, to: to) } }
    func tags(of name: String) throws -> Set<String> { try inner.tags(of: name) }
    func setTags(_ tags: Set<String>, of name: String) throws { try step { try inner.setTags(tags, of: name) } }
    func utilisation(of name: String) throws -> UInt64 { try inner.utilisation(of: name) }
    func capacity() throws -> (size: UInt64, used: UInt64) { try inner.capacity() }
    func freeSpace() throws -> UInt64 { try inner.freeSpace() }
    func spaceToHold(imageBytes: UInt64, virtualSize: UInt64, in name: String?, writable: Bool) throws -> UInt64 {
        try inner.spaceToHold(imageBytes: imageBytes, virtualSize: virtualSize, in: name, writable: writable)
    }
    func prepareForGrowth(_ name: String, virtualSize: UInt64) throws { try step { try inner.prepareForGrowth(name, virtualSize: virtualSize) } }
    func settleReadOnly(_ name: String) throws { try step { try inner.settleReadOnly(name) } }
    func sync() throws { try inner.sync() }
    func writeJournal(_ name: String, _ bytes: [UInt8]) throws { try step { try inner.writeJournal(name, bytes) } }
    func journals() throws -> [String: [UInt8]] { try inner.journals() }
    func journal(_ name: String) throws -> [UInt8]? { try inner.journal(name) }
    func removeJournal(_ name: String) throws { try step { try inner.removeJournal(name) } }
}
