import Foundation
import SMCore

// swiftsm-datapath: serves one VDI's VHD chain over NBD until told to close. Started by
// `vdi_activate` (detached, one per active VDI); usage:
//   swiftsm-datapath --sr UUID --vdi UUID --leaf PATH --dir DIR [--export NAME] [--read-only] [--tcp PORT]
guard let configuration = DatapathConfiguration(arguments: Array(CommandLine.arguments.dropFirst())) else {
    FileHandle.standardError.write(Data(("usage: swiftsm-datapath --sr UUID --vdi UUID --leaf PATH --dir DIR "
        + "[--export NAME] [--read-only] [--tcp PORT]\n").utf8))
    exit(2)
}
exit(Datapath.serve(configuration))
