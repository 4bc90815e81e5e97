import EXTDriver
import Foundation
import Logging
import SMCore

// smdriver: the SMAPIv1 plugin. Installed as EXTSR (argv[0] picks the driver), or run as
// `smdriver --driver ext '<methodCall>'`. Prints one methodResponse and always exits 0.
var args = Array(CommandLine.arguments.dropFirst())
var name = URL(fileURLWithPath: CommandLine.arguments.first ?? "").lastPathComponent
if args.first == "--driver", args.count >= 2 {
    name = args[1].uppercased() + "SR"
    args.removeFirst(2)
}
let run = RunDirectory.current
try? FileManager.default.createDirectory(atPath: run.root, withIntermediateDirectories: true)
let logger = Logger(label: "SM") { label in
    SMLogHandler(label: label, path: run.logFile, echo: ProcessInfo.processInfo.environment["SWIFTSM_LOG_STDERR"] != nil)
}
guard let driver = DriverRegistry.driver(named: name) else {
    FileHandle.standardError.write(Data("smdriver: unknown driver \(name) (known: \(DriverRegistry.names.joined(separator: ", ")))\n".utf8))
    print(SMAPIResponse.text(SMAPIResponse.fault(SMAPIError(.BadRequest))))
    exit(0)
}
let service = SMAPIService(driver: driver, run: run, log: logger) { request in
    try XenAPIToolstack.callbacks(for: request)
}
print(service.handle(arguments: args))
exit(0)
