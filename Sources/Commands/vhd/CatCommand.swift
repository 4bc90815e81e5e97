import ArgumentParser
import Foundation
import SystemPackage
import VHD

/// `vhd cat FILE`: the virtual disk as seen through the chain, to stdout. Into a regular file
/// (`vhd cat d.vhd > d.raw`) only allocated ranges are written, at their offsets, and the file is
/// sized to the disk, so it stays as sparse as the image (an empty 2040 GiB VHD takes no space);
/// into a pipe every byte is written, zeros included.
struct CatCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "cat", abstract: "Stream the virtual disk to stdout.")
    @Argument(help: "Image (a leaf: its parents are read through).") var name: String

    func run() throws {
        try VHDCommand.guarded {
            let chain = try VHDChain(path: name, provider: FileStoreProvider())
            let out = FileDescriptor.standardOutput
            var st = stat()
            let regular = fstat(out.rawValue, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG
                && fcntl(out.rawValue, F_GETFL) & O_APPEND == 0      // appending ignores offsets
            do {
                if regular {
                    let start = UInt64(try out.seek(offset: 0, from: .current))
                    try out.resize(to: Int64(start + chain.virtualSize))
                    try Convert.stream(chain, includeZeros: false) { offset, data in
                        _ = try out.writeAll(toAbsoluteOffset: Int64(start + offset), data)
                    }
                    _ = try out.seek(offset: Int64(start + chain.virtualSize), from: .start)
                } else {
                    try Convert.stream(chain, includeZeros: true) { _, data in _ = try out.writeAll(data) }
                }
            } catch let e as Errno {
                throw VHDError.io(path: "stdout", operation: "write", errno: e.rawValue)
            }
        }
    }
}
