import VHD

/// A provider whose stores count their writes, and whose create, remove and rename are steps.
final class CountingProvider: StoreProvider {
    let inner: any StoreProvider
    let counter: StepCounter

    init(_ inner: any StoreProvider, _ counter: StepCounter) {
        self.inner = inner
        self.counter = counter
    }

    func open(_ path: String, writable: Bool) throws -> any BlockStore { CountingStore(try inner.open(path, writable: writable), counter) }
    func create(_ path: String) throws -> any BlockStore {
        let s = try inner.create(path)
        counter.step()
        return CountingStore(s, counter)
    }
    func create(_ path: String, size: UInt64) throws -> any BlockStore {
        let s = try inner.create(path, size: size)
        counter.step()
        return CountingStore(s, counter)
    }
    func exists(_ path: String) -> Bool { inner.exists(path) }
    func remove(_ path: String) throws { try inner.remove(path); counter.step() }
    func rename(_ from: String, to: String) throws { try inner.rename(from, to: to); counter.step() }
    func modificationTime(_ path: String) -> Int? { inner.modificationTime(path) }
    func canonical(_ path: String) -> String { inner.canonical(path) }
    func list(_ directory: String) throws -> [String] { try inner.list(directory) }
}
