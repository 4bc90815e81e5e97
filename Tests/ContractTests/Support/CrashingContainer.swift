import Foundation
import SMCore
import VHD

/// Counts the steps an operation takes (each completed write or resize of a store opened
/// through the container's provider, and each completed change of the container itself) and
/// ends the process with status 203, as a crash would, right after step `crashAfter`.
final class StepCounter: @unchecked Sendable {
    /// The step after which the process dies (nil: never).
    let crashAfter: Int?
    /// Steps completed so far.
    private(set) var steps = 0

    init(crashAfter: Int?) { self.crashAfter = crashAfter }

    /// One more step done.
    func step() {
        steps += 1
        if let k = crashAfter, steps >= k { _exit(203) }
    }
}

/// A store that counts its writes and resizes as steps.
final class CountingStore: BlockStore {
    let inner: any BlockStore
    let counter: StepCounter

    init(_ inner: any BlockStore, _ counter: StepCounter) {
        self.inner = inner
        self.counter = counter
    }

    var size: UInt64 { inner.size }
    var isBlockDevice: Bool { inner.isBlockDevice }
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws { try inner.read(into: buffer, at: offset) }
    func write(_ buffer: UnsafeRawBufferPointer, at offset: UInt64) throws {
        try inner.write(buffer, at: offset)
        counter.step()
    }
    func resize(to size: UInt64) throws {
        try inner.resize(to: size)
        counter.step()
    }
    func sync() throws { try inner.sync() }
    func discard(offset: UInt64, count: UInt64) throws -> Bool { try inner.discard(offset: offset, count: count) }
    func unallocatedBytes(in range: Range<UInt64>) -> UInt64 { inner.unallocatedBytes(in: range) }
}

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
