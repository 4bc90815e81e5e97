import ArgumentParser
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import VHD

/// `vhd-bench time-snapshot PARENT --iterations 200`: times `Snapshot.create` in-process, a
/// fresh child name each time (the child is removed after each timing, untimed). With
/// `--breakdown`, also times the two halves of a snapshot separately: opening the parent with
/// its BAT (what `Snapshot.create` does to find its uuid, size and keyhash) and writing a new
/// image's metadata (`Create.dynamic` of the parent's size, the same layout a child gets), and
/// opening the parent without its BAT (`loadBAT: false`), what a dynamic parent would need.
struct TimeSnapshotCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "time-snapshot", abstract: "Median time of Snapshot.create over a parent, in-process.")
    @Argument(help: "Parent VHD.") var parent: String
    @Option(help: "Timed iterations.") var iterations: Int = 200
    @Option(help: "Untimed iterations first.") var warmup: Int = 5
    @Option(help: "Folder for the children (default: the parent's).") var directory: String?
    @Flag(help: "Also time opening the parent and writing the child's metadata separately.") var breakdown = false
    @Flag(help: "Print every sample in ms.") var verbose = false

    func run() throws {
        try VHDBench.guarded {
            let p = FileStoreProvider()
            let dir = directory ?? StorePath.directory(of: parent)
            let tag = "snapbench-\(getpid())"
            var samples: [Double] = []
            for i in 0..<(warmup + iterations) {
                let child = StorePath.join(dir, "\(tag)-\(i).vhd")
                let t = try Timing.seconds { try Snapshot.create(child: child, parent: parent, provider: p) }
                try p.remove(child)
                if i >= warmup { samples.append(t) }
            }
            let image = try VHDImage(store: try p.open(parent, writable: false), path: parent, writable: false)
            print("snapshot " + Timing.summary(samples, extra: "parent_size=\(image.virtualSize) bat_entries=\(image.maxTableEntries)"))
            if verbose { print("samples_ms=" + samples.map { String(format: "%.3f", $0 * 1000) }.joined(separator: ",")) }
            guard breakdown else { return }
            var open: [Double] = [], openHeader: [Double] = [], write: [Double] = []
            for i in 0..<(warmup + iterations) {
                let to = try Timing.seconds {
                    _ = try VHDImage(store: try p.open(parent, writable: false), path: parent, writable: false)
                }
                let th = try Timing.seconds {
                    _ = try VHDImage(store: try p.open(parent, writable: false), path: parent, writable: false, loadBAT: false)
                }
                let path = StorePath.join(dir, "\(tag)-create-\(i).vhd")
                let tw = try Timing.seconds { try Create.dynamic(at: path, size: image.virtualSize, provider: p) }
                try p.remove(path)
                if i >= warmup { open.append(to); openHeader.append(th); write.append(tw) }
            }
            print("open-parent-with-bat " + Timing.summary(open))
            print("open-parent-header-only " + Timing.summary(openHeader))
            print("write-new-metadata " + Timing.summary(write))
        }
    }
}
