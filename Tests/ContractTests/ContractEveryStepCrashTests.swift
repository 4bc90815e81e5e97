import Foundation
import SMCore
import Testing
import TestContainers
import VHD

/// Beyond the named fault points: the repository's journaled operations (a resize that grows
/// the BAT, a snapshot with a second leaf) killed after every single step they take (each
/// write through a store, each change of the container: `CrashingContainer`), in a child
/// process, against every container. After recovery the VDI holds every byte it held, the
/// operation is wholly done or wholly undone, nothing is left behind, every image is sound,
/// and the VDI can be written again.
@Suite(.serialized) struct ContractEveryStepCrashTests {
    /// An operation and the container it runs against.
    struct Case: Codable, Sendable, CustomTestStringConvertible {
        var kind: ContainerKind
        var operation: String
        var testDescription: String { "\(kind.rawValue): \(operation)" }
    }

    static let cases = ContainerKind.allCases.flatMap { k in ["resize", "snapshot"].map { Case(kind: k, operation: $0) } }

    static let mib: UInt64 = 1 << 20
    /// A resize from 8 MiB to this grows the BAT from one sector to three: the metadata grows
    /// over the first block, which moves to the end first.
    static let target: UInt64 = 520 * mib

    /// The VDI and the uuids the operation uses (what the child process is given).
    struct Setup: Codable, Sendable {
        var vdi = VDIName.newUUID()
        var copy = VDIName.newUUID()
        var base = VDIName.newUUID()
    }

    /// A new SR with the VDI the operation works on, and the VDI's contents.
    static func prepare(_ c: Case) throws -> (ContractSR, Setup, [UInt8]) {
        let sr = try ContractSR(c.kind, size: 1 << 30)
        do {
            let repo = try sr.repository()
            let s = Setup()
            if c.operation == "resize" {
                _ = try repo.create(uuid: s.vdi, size: 8 * mib)
                try Contents.write(repo, s.vdi, Contents.pattern(Int(8 * mib), seed: 21), at: 0)
            } else {
                _ = try repo.create(uuid: s.vdi, size: 16 * mib)
                try Contents.writePattern(repo, s.vdi, seed: 22)
            }
            return (sr, s, try Contents.all(repo, s.vdi))
        } catch {
            sr.cleanup()
            throw error
        }
    }

    /// Runs the operation through a container that dies after step `crashAfter` (nil: never).
    static func run(_ operation: String, _ s: Setup, on container: any VolumeContainer) throws {
        let repo = VHDRepository(container: container)
        if operation == "resize" {
            _ = try repo.resize(uuid: s.vdi, size: target)
        } else {
            _ = try repo.snapshot(uuid: s.vdi, copyUUID: s.copy, baseUUID: s.base)
        }
    }

    @Test(arguments: cases)
    func killedAfterEveryStep(_ c: Case) async throws {
        // How many steps the operation takes here, from one run that is not killed.
        let steps: Int = try {
            let (sr, s, _) = try Self.prepare(c)
            defer { sr.cleanup() }
            let firstBlock = try sr.repository().image(s.vdi).entry(0)
            let counting = CrashingContainer(try sr.container(), crashAfter: nil)
            try Self.run(c.operation, s, on: counting)
            // LVs get metadata for 2 TiB: their resize is the journaled rewrite of both footers.
            let preallocated = try sr.container().fastResizeLimit > 0
            if c.operation == "resize" && !preallocated {
                #expect(try sr.repository().image(s.vdi).entry(0) != firstBlock, "the first block moved out of the new metadata's way")
            }
            return counting.counter.steps
        }()
        #expect(steps >= 4, "the operation takes \(steps) steps")
        var outcomes: [String] = []
        for k in 1...steps {
            let (sr, s, before) = try Self.prepare(c)
            defer { sr.cleanup() }
            let (kind, location, operation) = (c.kind, sr.location, c.operation)
            await #expect(processExitsWith: .exitCode(203), "dies after step \(k) of \(steps)") {
                [kind = kind as ContainerKind, location = location as String, operation = operation as String, s = s as Setup, k = k as Int] in
                try Self.run(operation, s, on: CrashingContainer(try kind.open(location), crashAfter: k))
            }
            let repo = try sr.repository()
            _ = try repo.recover()
            try expectNoLeftovers(repo)
            try expectChecked(repo, "after step \(k) of \(steps)")
            try expectSized(repo)
            let tree = try repo.scan()
            if c.operation == "resize" {
                // Old size or new, the data is there and the rest reads as zeros.
                let size = try #require(tree[s.vdi]?.virtualSize)
                #expect(size == 8 * Self.mib || size == Self.target, "after step \(k): \(size)")
                #expect(try Contents.read(repo, s.vdi, count: before.count, at: 0) == before, "after step \(k)")
                #expect(try Contents.isZero(repo, s.vdi, UInt64(before.count)..<size), "after step \(k)")
                outcomes.append(size == 8 * Self.mib ? "old" : "new")
                _ = try repo.resize(uuid: s.vdi, size: Self.target)
                let tail = Contents.pattern(1 << 20, seed: 23)
                try Contents.write(repo, s.vdi, tail, at: Self.target - Self.mib)
                #expect(try Contents.read(repo, s.vdi, count: tail.count, at: Self.target - Self.mib) == tail)
            } else {
                #expect(try Contents.all(repo, s.vdi) == before, "after step \(k)")
                if let copy = tree[s.copy] {
                    #expect(copy.parent == s.base && tree[s.vdi]?.parent == s.base && tree[s.base]?.hidden == true, "after step \(k)")
                    #expect(try Contents.all(repo, s.copy) == before, "after step \(k)")
                    outcomes.append("done")
                } else {
                    #expect(tree[s.base] == nil && tree[s.vdi]?.parent == nil && tree[s.vdi]?.hidden == false, "after step \(k): \(tree)")
                    outcomes.append("undone")
                }
                let more = Contents.pattern(1 << 20, seed: 24)
                try Contents.write(repo, s.vdi, more, at: 3 * Self.mib)
                #expect(try Contents.read(repo, s.vdi, count: more.count, at: 3 * Self.mib) == more)
            }
            try expectChecked(repo)
        }
        // Killed early it is undone, killed late it is done.
        #expect(outcomes.first == (c.operation == "resize" ? "old" : "undone") && outcomes.last == (c.operation == "resize" ? "new" : "done"),
                "\(outcomes)")
        print("ContractTests: \(c.kind.rawValue) \(c.operation): killed after each of \(steps) steps: \(outcomes.joined(separator: " "))")
    }
}
