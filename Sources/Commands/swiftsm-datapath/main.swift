import DriverRegistry
import Foundation
import Logging
import SMCore

// swiftsm-datapath: serves one VDI's VHD chain over NBD until told to close. Started by
// `vdi_activate` (detached, one per active VDI); it rebuilds the SR's container from the plug
// record its attach left under the run directory, through the SR's driver. Usage:
//   swiftsm-datapath --driver TYPE --sr UUID --vdi UUID --dir DIR [--export NAME] [--read-only] [--tcp PORT] [--run DIR]
guard let configuration = DatapathConfiguration(arguments: Array(CommandLine.arguments.dropFirst())) else {
    FileHandle.standardError.write(Data(("usage: swiftsm-datapath --driver TYPE --sr UUID --vdi UUID --dir DIR "
        + "[--export NAME] [--read-only] [--tcp PORT] [--run DIR]\n").utf8))
    exit(2)
}
exit(Datapath.serve(configuration) { c in
    guard let driver = DriverRegistry.driver(named: c.driver) else { throw DatapathError.startFailed("unknown driver \(c.driver)") }
    return try DriverContext.container(of: c.srUUID, driver: driver, run: c.run, log: Logger(label: "datapath"), servesDataPath: true)
})
