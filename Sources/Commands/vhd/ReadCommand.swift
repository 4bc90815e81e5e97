import ArgumentParser
import Foundation
import VHD

/// `vhd read -n FILE -p` (human dump of the metadata) or `-B` (the BAT as a bitmap on stdout).
struct ReadCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "read", abstract: "Dump an image's metadata.")
    @Option(name: .customShort("n"), help: "Image.") var name: String
    @Flag(name: .customShort("p"), help: "Print footer, header, locators and batmap.") var print = false
    @Flag(name: .customShort("B"), help: "Write the BAT allocation bitmap (MSB first) to stdout.") var batBitmap = false

    func run() throws {
        try VHDCommand.guarded {
            let image = try VHDImage(store: try FileStore(path: name, writable: false), path: name, writable: false)
            if batBitmap {
                var bits = [UInt8](repeating: 0, count: (image.blockCount + 7) / 8)
                for b in 0..<image.blockCount where image.isAllocated(b) { bits[b >> 3] |= 0x80 >> UInt8(b & 7) }
                FileHandle.standardOutput.write(Data(bits))
                return
            }
            for l in MetadataDump.lines(image) { Output.line(l) }
        }
    }
}

/// The human-readable dump of an image's metadata.
enum MetadataDump {
    /// Lines describing footer, header, locators and batmap.
    static func lines(_ image: VHDImage) -> [String] {
        let f = image.footer
        var out = ["VHD Footer Summary:", "-------------------",
                   "Cookie              : \(f.disabled ? "v_poison" : "conectix") (\(image.footerSource.rawValue) copy)",
                   "Features            : 0x\(String(f.features, radix: 16, uppercase: false))",
                   "File format version : 0x\(String(f.formatVersion, radix: 16))",
                   "Timestamp           : \(Date(timeIntervalSince1970: TimeInterval(VHDTime.toUnix(f.timestamp))))",
                   "Creator Application : '\(f.creatorName)'",
                   "Creator version     : \(f.creatorVersionText)",
                   "Original disk size  : \(f.originalSize >> 20) MB (\(f.originalSize) Bytes)",
                   "Current disk size   : \(f.currentSize >> 20) MB (\(f.currentSize) Bytes)",
                   "Geometry            : Cyl: \(f.geometry.cylinders), Hds: \(f.geometry.heads), Sctrs: \(f.geometry.sectorsPerTrack)",
                   "Disk type           : \(f.diskType)",
                   "Checksum            : 0x\(String(f.checksum, radix: 16))",
                   "UUID                : \(f.uuid)",
                   "Saved state         : \(f.savedState == 0 ? "No" : "Yes")",
                   "Hidden              : \(f.hidden)", ""]
        guard let h = image.header else { return out }
        out += ["VHD Header Summary:", "-------------------",
                "Table offset        : \(h.tableOffset)",
                "Header version      : 0x\(String(h.headerVersion, radix: 16))",
                "Max BAT size        : \(h.maxTableEntries)",
                "Block size          : \(h.blockSize) (\(h.blockSize >> 20) MB)",
                "Parent name         : \(h.parentName)",
                "Parent UUID         : \(h.parentUUID)",
                "Parent timestamp    : \(Date(timeIntervalSince1970: TimeInterval(VHDTime.toUnix(h.parentTimestamp))))",
                "Checksum            : 0x\(String(h.checksum, radix: 16))", ""]
        for (i, l) in h.locators.enumerated() where l.rawCode != 0 {
            out += ["Parent locator \(i): code \(l.code?.name ?? "0x" + String(l.rawCode, radix: 16)), data_space \(l.dataSpace), data_len \(l.dataLength), offset \(l.dataOffset)"]
        }
        if let bh = image.batmapHeader {
            out += ["", "VHD Batmap Summary:", "-------------------",
                    "Batmap offset       : \(bh.mapOffset)",
                    "Batmap size (secs)  : \(bh.mapSectors)",
                    "Batmap version      : 0x\(String(bh.version, radix: 16))",
                    "Checksum            : 0x\(String(bh.checksum, radix: 16)) (\(image.batmapValid ? "valid" : "INVALID"))",
                    "Marker              : \(bh.marker)"]
        }
        out += ["", "Allocated blocks    : \(image.allocatedBlockCount) of \(image.blockCount)"]
        return out
    }
}
