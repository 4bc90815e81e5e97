import Foundation
import Toolstack

// xe: the XenAPI command line (xe's syntax and output) over toolstackd's local socket
// (XE_SOCKET or /var/lib/xcp/xapi) or, with -s HOST [-p PORT] -u USER -pw PASSWORD, over HTTPS
// verified against --cafile FILE (or XE_CAFILE), the system's CAs, or nothing with --no-verify
// (plain HTTP with --nossl).
let arguments = Array(CommandLine.arguments.dropFirst())
guard var invocation = XeInvocation(arguments.isEmpty ? ["help"] : arguments) else {
    FileHandle.standardError.write(Data("Usage: xe <command> [key=value …]; xe help\n".utf8))
    exit(1)
}
// The certificate to trust may also come from the environment (a host's own, kept by the user).
if invocation.caFile == nil, let file = ProcessInfo.processInfo.environment["XE_CAFILE"], !file.isEmpty { invocation.caFile = file }
let endpoint: XenAPIConnection.Endpoint = invocation.server.map { invocation.noSSL ? .tcp($0, invocation.port) : .tls($0, invocation.port) }
    ?? .unix(ProcessInfo.processInfo.environment["XE_SOCKET"] ?? "/var/lib/xcp/xapi")
let api = XenAPIConnection(endpoint: endpoint, trust: invocation.trust)
do {
    if invocation.command != "help" { _ = try api.login(user: invocation.username, password: invocation.password) }
    let output = try XeRunner(api: api, showProgress: isatty(1) != 0).run(invocation)
    FileHandle.standardOutput.write(Data(output.utf8))
    if invocation.command != "help" { _ = try? api.call("session.logout") }
    exit(0)
} catch let e as XeError {
    FileHandle.standardOutput.write(Data(e.output.utf8))
    FileHandle.standardError.write(Data((e.message + "\n").utf8))
    exit(e.status)
} catch let f as APIFailure {
    FileHandle.standardError.write(Data((XeError(f).message + "\n").utf8))
    exit(1)
} catch {
    FileHandle.standardError.write(Data("\(error)\n".utf8))
    exit(3)
}
