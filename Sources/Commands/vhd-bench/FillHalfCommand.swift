import ArgumentParser
import Foundation
import VHD

/// `vhd-bench fill-half FILE --size-mb 4096 --seed 7 [--blocks N | --percent P]`: whole blocks of
/// random data in about half the blocks of a VHD (created dynamic if missing; an existing
/// differencing child is filled in place), like blktap's `vhdio fillpct`.
struct FillHalfCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fill-half", abstract: "Write random data into whole blocks (about half of them) of a VHD.")
    @Argument(help: "VHD to fill (created as a dynamic VHD if it does not exist).") var file: String
    @Option(help: "Virtual size in MiB when creating.") var sizeMb: UInt64 = 4096
    @Option(help: "Seed of the random block choice and data.") var seed: UInt64 = 7
    @Option(help: "Fill exactly this many blocks (default: --percent of them, each at random).") var blocks: Int?
    @Option(help: "Percentage of blocks to fill when --blocks is not given.") var percent: Double = 50

    func run() throws {
        try VHDBench.guarded {
            let p = FileStoreProvider()
            if !p.exists(file) { try Create.dynamic(at: file, size: sizeMb << 20, provider: p) }
            let image = try VHDImage(store: try p.open(file, writable: true), path: file, writable: true)
            guard image.diskType != .fixed else { throw ValidationError("\(file) is a fixed VHD") }
            image.deferMetadata = true
            var rng = BenchRandom(seed: seed)
            let chosen = try pickBlocks(total: image.blockCount, count: blocks, percent: percent, rng: &rng)
            let bs = image.blockSize
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: bs, alignment: 4096)
            defer { buffer.deallocate() }
            var bytes: UInt64 = 0
            let seconds = try Timing.seconds {
                for b in chosen {
                    // Last block of an odd-sized disk: only the part inside the virtual size.
                    let n = Int(min(UInt64(bs), image.virtualSize - UInt64(b) * UInt64(bs)))
                    rng.fill(buffer)
                    if image.isAllocated(b) || n < bs {
                        try image.write(UnsafeRawBufferPointer(rebasing: buffer[0..<n]), atSector: UInt64(b) * UInt64(bs / 512))
                    } else {
                        try image.appendFullBlock(b, data: UnsafeRawBufferPointer(buffer))
                    }
                    bytes += UInt64(n)
                }
                try image.commit()
                try image.store.sync()
            }
            print("filled \(chosen.count) of \(image.blockCount) blocks, \(bytes) bytes, in \(String(format: "%.2f", seconds)) s: \(file)")
        }
    }
}
