import ArgumentParser
import Foundation
import VHD

/// `vhd write -n FILE -o OFFSET [-i INPUT]`: write bytes (stdin by default) into the virtual
/// disk at a byte offset, through the chain (sector-granular copy-on-write into the leaf).
struct WriteCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "write", abstract: "Write data into the virtual disk.")
    @Option(name: .customShort("n"), help: "Image (the leaf of its chain).") var name: String
    @Option(name: .customShort("o"), help: "Byte offset in the virtual disk.") var offset: UInt64
    @Option(name: .customShort("i"), help: "Input file (default: stdin).") var input: String?

    func run() throws {
        try VHDCommand.guarded {
            let chain = try VHDChain(path: name, provider: FileStoreProvider(), writable: true)
            let source = input.map { FileHandle(forReadingAtPath: $0) } ?? FileHandle.standardInput
            guard let source else { throw VHDError.io(path: input ?? "-", operation: "open", errno: 2) }
            var at = offset
            while let chunk = try source.read(upToCount: 4 << 20), !chunk.isEmpty {
                try chunk.withUnsafeBytes { try chain.write($0, at: at) }
                at += UInt64(chunk.count)
            }
            try chain.flush()
        }
    }
}
