import ArgumentParser
import Foundation
import VHD

/// `vhd-bench fill-sparse FILE --blocks 1016 --runs 256 --sectors 8 --seed 11`: in each of
/// `blocks` random blocks, `runs` separate runs of `sectors` random sectors, written one run at a
/// time through the engine's sector-granular write (like blktap's `vhdio fillsparse`). The block
/// is cut into `runs` equal segments; each run starts at a random sector of its segment and
/// leaves at least one sector free before the next, so the child's bitmap has exactly `runs`
/// separate runs per block, most of them not 4 KiB-aligned.
struct FillSparseCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fill-sparse", abstract: "Write scattered runs of random sectors into a VHD (usually a child).")
    @Argument(help: "Existing dynamic or differencing VHD.") var file: String
    @Option(help: "Blocks to touch, chosen at random.") var blocks: Int = 1016
    @Option(help: "Runs per block.") var runs: Int = 256
    @Option(help: "Sectors per run.") var sectors: Int = 8
    @Option(help: "Seed of the random choices and data.") var seed: UInt64 = 11

    func run() throws {
        try VHDBench.guarded {
            let p = FileStoreProvider()
            let image = try VHDImage(store: try p.open(file, writable: true), path: file, writable: true)
            guard image.diskType != .fixed else { throw ValidationError("\(file) is a fixed VHD") }
            let spb = image.sectorsPerBlock
            guard runs > 0, sectors > 0, spb / runs > sectors else {
                throw ValidationError("\(runs) runs of \(sectors) sectors (with gaps) do not fit in \(spb) sectors")
            }
            let segment = spb / runs
            // Only whole blocks inside the virtual size are candidates.
            let whole = Int(image.virtualSize / UInt64(image.blockSize))
            image.deferMetadata = true
            var rng = BenchRandom(seed: seed)
            let chosen = try pickBlocks(total: whole, count: blocks, percent: 0, rng: &rng)
            let data = UnsafeMutableRawBufferPointer.allocate(byteCount: sectors * 512, alignment: 4096)
            defer { data.deallocate() }
            var writes = 0
            let seconds = try Timing.seconds {
                for b in chosen {
                    for r in 0..<runs {
                        let offset = r * segment + rng.below(segment - sectors)
                        rng.fill(data)
                        try image.write(UnsafeRawBufferPointer(data), atSector: UInt64(b * spb + offset))
                        writes += 1
                    }
                }
                try image.commit()
                try image.store.sync()
            }
            let bytes = UInt64(writes) * UInt64(sectors) * 512
            print("wrote \(writes) runs of \(sectors) sectors in \(chosen.count) blocks, \(bytes) bytes, in \(String(format: "%.2f", seconds)) s: \(file)")
        }
    }
}
