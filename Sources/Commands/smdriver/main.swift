import DriverRegistry
import Foundation
import Logging
import SMCore

// smdriver: the SMAPIv1 plugin. Installed as EXTSR (argv[0] picks the driver), or run as
// `smdriver --driver ext '<methodCall>'`. Prints one methodResponse and always exits 0.
// `smdriver --driver ext gc --sr UUID …` runs the SR's garbage collector (GCCommand).
// Installed as /etc/xapi.d/plugins/tapdisk-pause, lvhd-thin or datapath-mirror (or `--driver <plugin>`), it is
// that host plugin: argv[1] is xapi's methodCall, the answer goes to stdout (HostPlugin).
var args = Array(CommandLine.arguments.dropFirst())
var name = URL(fileURLWithPath: CommandLine.arguments.first ?? "").lastPathComponent
if args.first == "--driver", args.count >= 2 {
    name = args[1]
    args.removeFirst(2)
}
let run = RunDirectory.current
try? FileManager.default.createDirectory(atPath: run.root, withIntermediateDirectories: true)
let logger = Logger(label: "SM") { label in
    SMLogHandler(label: label, path: run.logFile, echo: ProcessInfo.processInfo.environment["SWIFTSM_LOG_STDERR"] != nil)
}
if let plugin = DriverRegistry.plugin(named: name, run: run, log: logger) {
    print(plugin.handle(args.first ?? ""))
    exit(0)
}
guard let driver = DriverRegistry.driver(named: name) else {
    FileHandle.standardError.write(Data("smdriver: unknown driver \(name) (known: \(DriverRegistry.names.joined(separator: ", ")))\n".utf8))
    print(SMAPIResponse.text(SMAPIResponse.fault(SMAPIError(.BadRequest))))
    exit(0)
}
if args.first == "gc" {
    GCCommand.driver = driver
    GCCommand.main(Array(args.dropFirst()))
    exit(0)
}
var service = SMAPIService(driver: driver, run: run, log: logger) { request in
    try XenAPICallbackClient.callbacks(for: request)
}
if BackgroundCollector.enabled { service.collectorStarter = BackgroundCollector.starter(type: driver.type, run: run, log: logger) }
print(service.handle(arguments: args))
exit(0)
