import Foundation
import NIOCore

/// The control socket's line protocol: one command per line, one reply line each, `ok …` or
/// `error …`. Commands: `ping`, `stats` (JSON counters), `pause [nosync]` (stop taking requests,
/// drain the one running, flush — or only write the metadata —, close the chain), `unpause [leaf
/// path]` (reopen, release held requests), `flush` (force writes to disk, running on),
/// `refresh <leaf path>` (reopen the chain between two requests: its parents changed),
/// `close` (flush, close everything, exit); for a live migration, `mirror <sr> <vdi>` (mirror
/// every change to that VDI's datapath here), `mirror-stop` (drain the mirror, flush the
/// destination, stop) and `switch <driver> <sr> <vdi>` (paused: reopen on that VDI, whose
/// datapath has closed, and become its datapath).
final class DatapathControlHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// Longest command line accepted.
    static let maxLine = 4096
    /// Most commands waiting behind a running pause or unpause.
    static let maxQueued = 64

    let datapath: Datapath
    var line = ByteBuffer()
    var busy = false
    var queued: [String] = []

    /// A handler controlling `datapath`.
    init(datapath: Datapath) { self.datapath = datapath }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        line.writeBuffer(&incoming)
        while let i = line.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) {
            let text = line.readString(length: i - line.readerIndex) ?? ""
            line.moveReaderIndex(forwardBy: 1)
            queued.append(text.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        if queued.count > Self.maxQueued {
            respond(context, "error too many commands")
            context.close(promise: nil)
            return
        }
        line.discardReadBytes()
        if line.readableBytes > Self.maxLine {
            respond(context, "error line too long")
            context.close(promise: nil)
            return
        }
        runNext(context)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) { context.close(promise: nil) }

    func respond(_ context: ChannelHandlerContext, _ text: String) {
        var b = context.channel.allocator.buffer(capacity: text.utf8.count + 1)
        b.writeString(text + "\n")
        context.writeAndFlush(wrapOutboundOut(b), promise: nil)
    }

    /// Runs queued commands one at a time (pause and unpause finish on the chain thread).
    func runNext(_ context: ChannelHandlerContext) {
        while !busy, !queued.isEmpty {
            let command = queued.removeFirst()
            let words = command.split(separator: " ", maxSplits: 1).map(String.init)
            switch words.first ?? "" {
            case "":
                continue
            case "ping":
                respond(context, "ok pong")
            case "stats":
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
                let data = (try? encoder.encode(datapath.statistics())) ?? Data("{}".utf8)
                respond(context, "ok " + String(decoding: data, as: UTF8.self))
            case "pause", "unpause", "flush", "refresh":
                let argument = words.count > 1 ? words[1] : nil
                if (words[0] == "refresh" || words[0] == "unpause"), let a = argument, a.contains("/") || a.hasPrefix(".") {
                    respond(context, "error '\(a.prefix(64))' is not a volume name"); continue
                }
                if words[0] == "pause", let a = argument, a != "nosync" { respond(context, "error unknown pause option '\(a.prefix(64))'"); continue }
                busy = true
                let promise = context.eventLoop.makePromise(of: String.self)
                let reply = ["pause": "ok paused", "unpause": "ok running", "flush": "ok flushed", "refresh": "ok running"][words[0]]!
                let done: @Sendable (Result<Void, ChainWorker.Failure>) -> Void = { r in
                    switch r {
                    case .success: promise.succeed(reply)
                    case let .failure(e): promise.succeed("error \(e)")
                    }
                }
                if words[0] == "pause" {
                    datapath.log.info("control: pause \(argument ?? "")")
                    datapath.worker.pause(sync: argument != "nosync", done)
                } else if words[0] == "flush" {
                    datapath.worker.flush(done)
                } else if words[0] == "refresh" {
                    datapath.log.info("control: refresh \(argument ?? "")")
                    datapath.worker.refresh(leaf: argument, done)
                } else {
                    datapath.log.info("control: unpause \(argument ?? "")")
                    datapath.worker.unpause(leaf: argument, done)
                }
                promise.futureResult.assumeIsolated().whenSuccess { text in
                    self.respond(context, text)
                    self.busy = false
                    self.runNext(context)
                }
            case "mirror", "mirror-stop", "switch":
                let arguments = words.count > 1 ? words[1].split(separator: " ").map(String.init) : []
                // mirror <sr> <vdi> | mirror-stop | switch <driver> <sr> <vdi>: uuids last, a driver name first.
                let uuids = ["mirror": 2, "mirror-stop": 0, "switch": 2][words[0]]!
                let driver = words[0] == "switch" ? 1 : 0
                guard arguments.count == driver + uuids, arguments.suffix(uuids).allSatisfy(VDIName.isUUID),
                      arguments.prefix(driver).allSatisfy({ $0.allSatisfy { $0.isLetter || $0.isNumber } }) else {
                    respond(context, "error usage: mirror <sr> <vdi> | mirror-stop | switch <driver> <sr> <vdi>"); continue
                }
                busy = true
                datapath.log.info("control: \(command)")
                let promise = context.eventLoop.makePromise(of: String.self)
                let datapath = self.datapath, command = words[0]
                // Blocking (a connection to make, a queue to drain, a chain to open): off the event loop.
                DispatchQueue.global().async {
                    do {
                        switch command {
                        case "mirror":
                            try datapath.startMirror(sr: arguments[0], vdi: arguments[1])
                            promise.succeed("ok mirroring")
                        case "mirror-stop":
                            promise.succeed("ok mirrored \(try datapath.stopMirror())")
                        default:
                            try datapath.rehome(driver: arguments[0], sr: arguments[1], vdi: arguments[2])
                            promise.succeed("ok running")
                        }
                    } catch {
                        promise.succeed("error \(error)")
                    }
                }
                promise.futureResult.assumeIsolated().whenSuccess { text in
                    self.respond(context, text)
                    self.busy = false
                    self.runNext(context)
                }
            case "close":
                datapath.log.info("control: close")
                busy = true
                respond(context, "ok closing")
                datapath.shutdownInBackground()
            default:
                respond(context, "error unknown command '\(words[0].prefix(64))'")
            }
        }
    }
}
