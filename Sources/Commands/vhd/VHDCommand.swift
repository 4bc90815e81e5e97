import ArgumentParser
import VHD

/// `vhd`: blktap vhd-util's commands and flags over the SwiftSM VHD engine, plus convert, cat,
/// map and info.
@main
struct VHDCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vhd",
        abstract: "Create, snapshot, query, check, repair, resize and coalesce VHD images (vhd-util compatible).",
        subcommands: [CreateCommand.self, SnapshotCommand.self, QueryCommand.self, CoalesceCommand.self,
                      CheckCommand.self, RepairCommand.self, ResizeCommand.self, SetCommand.self, ModifyCommand.self,
                      RevertCommand.self, ScanCommand.self, ReadCommand.self, WriteCommand.self, ConvertCommand.self, CatCommand.self,
                      MapCommand.self, InfoCommand.self, CBTCommand.self])

    /// Runs a command body, turning engine errors into vhd-util style exit codes and messages.
    static func guarded(_ body: () throws -> Void) throws {
        do {
            try body()
        } catch let e as VHDError {
            Output.error(e.description)
            throw ExitCode(e.exitCode)
        }
    }
}

extension VHDError {
    /// The errno-like exit status vhd-util would give.
    var exitCode: Int32 {
        switch self {
        case let .io(_, _, errno): return errno
        case .parentNotFound: return 2
        case .noSpace: return 28
        case .readOnly: return 30
        case .chainTooDeep: return 7
        case .outOfRange: return 34
        case .cancelled: return 125
        default: return 22
        }
    }
}
