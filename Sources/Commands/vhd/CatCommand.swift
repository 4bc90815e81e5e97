import ArgumentParser
import Foundation
import VHD

/// `vhd cat FILE`: the virtual disk as seen through the chain, to stdout.
struct CatCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "cat", abstract: "Stream the virtual disk to stdout.")
    @Argument(help: "Image (a leaf: its parents are read through).") var name: String

    func run() throws {
        try VHDCommand.guarded {
            let chain = try VHDChain(path: name, provider: FileStoreProvider())
            try Convert.stream(chain, includeZeros: true) { _, data in
                var done = 0
                while done < data.count {
                    let n = Foundation.write(STDOUT_FILENO, data.baseAddress! + done, data.count - done)
                    if n < 0 {
                        if errno == EINTR { continue }
                        throw VHDError.io(path: "stdout", operation: "write", errno: errno)
                    }
                    done += n
                }
            }
        }
    }
}
