import Foundation
import NIOHTTP1
import VHD
import XenAPIWire

/// xapi's HTTP transfers of VDI contents: `GET /export_raw_vdi` and `PUT /import_raw_vdi`, with
/// `vdi=` (reference or uuid), `format=raw|vhd`, `base=` (export: a VHD of the differences),
/// and `session_id=` or Basic credentials, and `task_id=` for a task the caller made (else one
/// is made for the transfer). Each transfer is a job like `VDI.copy`'s, on its task: the VBD it
/// plugs on the control domain is tagged first, so a failure, a cancel or a restart unplugs it.
extension XenAPIService {
    /// A refusal of a transfer: the HTTP status and the API failure the task records.
    struct TransferRefusal: Error {
        /// The HTTP status answered.
        var status: HTTPResponseStatus
        /// What the task records.
        var failure: APIFailure
    }

    /// Answers `GET /export_raw_vdi`.
    func serveExport(_ request: TransferRequest, _ response: HTTPStreamResponse) {
        serveTransfer(request, response, name: "VDI.export_raw_vdi") { task, vdi in
            let format = try transferFormat(request)
            let base: ObjectRecord? = try request.arguments["base"].flatMap { $0.isEmpty || $0 == ObjectRef.null ? nil : $0 }
                .map { try transferVDI($0) }
            if base != nil && format == .raw {
                throw TransferRefusal(status: .badRequest, failure: APIFailure("VDI_INCOMPATIBLE_TYPE", "base= needs format=vhd"))
            }
            let K = CopyJobKey.self
            setJob(task, [K.stage: "attach", K.source: vdi.ref])
            let exports = try attachForJob([(vdi.ref, true)] + (base.map { [($0.ref, true)] } ?? []), task: task, session: "")
            let source = exports[0], baseExport = base == nil ? nil : exports[1]
            setJob(task, [K.stage: "export"])
            let exporter = VDIExporter(source: source, base: baseExport, size: vdi.int("virtual_size"),
                                       layers: base.flatMap { chainLayers(vdi, $0) })
            let parent = base.map { VHDStreamLayout.Parent(uuid: VHDUUID(string: $0.uuid) ?? .null, relativePath: "./\($0.uuid).vhd") }
            let plan: VDIExporter.Plan
            // A VHD export carries its VDI's uuid, so that a later differencing export names it as its parent.
            do { plan = try exporter.plan(format, uuid: VHDUUID(string: vdi.uuid) ?? .random(), parent: parent) } catch {
                throw TransferRefusal(status: .badRequest, failure: APIFailure("VDI_IO_ERROR", "\(error)"))
            }
            setJob(task, [K.total: String(plan.length), K.done: "0", K.deltaBasis: exporter.deltaBasis])
            try response.start(.ok, headers: [("Content-Type", "application/octet-stream"), ("task-id", task)], length: plan.length)
            if !request.headOnly {
                let throttle = CopyProgressThrottle()
                try exporter.run(plan, sink: { try response.write($0) }, progress: { [self] done in
                    guard throttle.due(Date()) else { return }
                    setJob(task, [K.done: String(done)])
                    setProgress(task, plan.length == 0 ? 1 : Double(done) / Double(plan.length))
                }, cancelled: { [self] in cancelAsked(task) })
            }
            response.finish()
            setJob(task, [K.done: String(plan.length), K.stage: "detach"])
            detachCopyVBDs(task)
            setJob(task, [K.stage: "done"])
        }
    }

    /// Answers `PUT /import_raw_vdi`, reading the upload from `body` as it arrives.
    func serveImport(_ request: TransferRequest, body: ByteBufferPipe, _ response: HTTPStreamResponse) {
        serveTransfer(request, response, name: "VDI.import_raw_vdi", rest: body) { task, vdi in
            if request.arguments["chunked"] != nil {
                throw TransferRefusal(status: .badRequest, failure: .internalError(
                    "xapi's chunked upload encoding is not supported: send the raw bytes (HTTP chunked transfer-encoding is fine)"))
            }
            let format = try transferFormat(request)
            if vdi.bool("read_only") || vdi.bool("is_a_snapshot") {
                throw TransferRefusal(status: .forbidden, failure: APIFailure("VDI_READONLY", vdi.ref))
            }
            if format == .raw, let length = request.contentLength, length > UInt64(vdi.int("virtual_size")) {
                throw TransferRefusal(status: .badRequest, failure: APIFailure("VDI_IO_ERROR",
                    VDIImporter.Refusal.tooLarge(disk: length, vdi: vdi.int("virtual_size")).description))
            }
            try withOperation("VDI", vdi.ref, "copy", task: task) {
                let K = CopyJobKey.self
                setJob(task, [K.stage: "attach", K.destination: vdi.ref, K.created: "false"])
                let destination = try attachForJob(vdi.ref, readOnly: false, task: task, session: "")
                setJob(task, [K.stage: "import"])
                if request.expectsContinue { try response.sendContinue() }
                let importer = VDIImporter(destination: destination)
                let throttle = CopyProgressThrottle()
                let progress: (UInt64) -> Void = { [self] done in
                    guard throttle.due(Date()) else { return }
                    setJob(task, [K.done: String(done)])
                    if let total = request.contentLength, total > 0 { setProgress(task, min(0.99, Double(done) / Double(total))) }
                }
                let outcome: VDIImporter.Outcome
                do {
                    outcome = try format == .raw
                        ? importer.importRaw(body, progress: progress, cancelled: { [self] in cancelAsked(task) })
                        : importer.importVHD(body, progress: progress, cancelled: { [self] in cancelAsked(task) })
                } catch let refusal as VDIImporter.Refusal {
                    throw TransferRefusal(status: .badRequest, failure: APIFailure("VDI_IO_ERROR", refusal.description))
                }
                setJob(task, [K.done: String(outcome.received), K.written: String(outcome.written), K.stage: "detach"])
                detachCopyVBDs(task)
                setJob(task, [K.stage: "done"])
                try response.start(.ok, headers: [("task-id", task)], length: 0)
                response.finish()
            }
        }
    }

    /// The `format=` of a transfer: raw when absent; `404` for others, as xapi answers.
    private func transferFormat(_ request: TransferRequest) throws -> VDIExporter.Format {
        switch request.arguments["format"] ?? "raw" {
        case "raw", "": return .raw
        case "vhd": return .vhd
        case let other: throw TransferRefusal(status: .notFound, failure: .internalError("Unknown format \(other)"))
        }
    }

    /// The VDI a transfer argument names, by reference or uuid.
    private func transferVDI(_ name: String) throws -> ObjectRecord {
        let found: ObjectRecord? = db.read { v in v.find("VDI", name) ?? (try? v.byUUID("VDI", name)) }
        guard let found else { throw TransferRefusal(status: .notFound, failure: APIFailure("HANDLE_INVALID", "VDI", name)) }
        return found
    }

    /// Authenticates a transfer, finds its VDI and task, runs `body` and records its outcome on
    /// the task; a failure rolls the job back and answers an HTTP error (after reading the `rest`
    /// of an upload), or, once the response started, cuts the connection.
    private func serveTransfer(_ request: TransferRequest, _ response: HTTPStreamResponse, name: String, rest: ByteBufferPipe? = nil,
                               _ body: (_ task: String, _ vdi: ObjectRecord) throws -> Void) {
        var temporarySession: String?
        var ownTask: String?
        var task: String?
        defer {
            if let ownTask { _ = try? db.write { txn in if txn.find("task", ownTask) != nil { txn.delete("task", ownTask) } } }
            if let temporarySession { destroySession(temporarySession) }
        }
        do {
            let session: String
            if let given = request.arguments["session_id"] {
                guard db.read({ $0.find("session", given) }) != nil else {
                    throw TransferRefusal(status: .forbidden, failure: .sessionInvalid(given))
                }
                session = given
            } else if let (user, password) = request.basicCredentials {
                do { try authenticate(user: user, password: password, transport: request.transport) } catch let f as APIFailure {
                    throw TransferRefusal(status: .unauthorized, failure: f)
                }
                session = try createSession(user: user, originator: name)
                temporarySession = session
            } else {
                throw TransferRefusal(status: .unauthorized, failure: APIFailure("SESSION_AUTHENTICATION_FAILED", "", "no session_id and no credentials"))
            }
            guard let vdiName = request.arguments["vdi"] else {
                throw TransferRefusal(status: .badRequest, failure: APIFailure("FIELD_MISSING", "vdi"))
            }
            let vdi = try transferVDI(vdiName)
            if let given = request.arguments["task_id"], !given.isEmpty {
                guard db.read({ $0.find("task", given) })?.string("status") == "pending" else {
                    throw TransferRefusal(status: .badRequest, failure: APIFailure("HANDLE_INVALID", "task", given))
                }
                task = given
            } else {
                task = try createTask(name: name, session: session, cancellable: true)
                ownTask = task
            }
            log.info("\(name) of VDI \(vdi.uuid) (task \(task!))")
            try body(task!, vdi)
            finishTask(task!, .success(.string("")))
        } catch {
            if let task {
                rollbackCopyJob(task)
                finishTask(task, .failure(Self.transferFailure(error, task: task)))
            }
            log.warning("\(name): \(error)")
            if response.started {
                response.abort()
            } else {
                let refusal = error as? TransferRefusal
                let failure = Self.transferFailure(error, task: task)
                var headers: [(String, String)] = task.map { [("task-id", $0)] } ?? []
                if refusal?.status == .unauthorized { headers.append(("WWW-Authenticate", "Basic realm=\"xapi\"")) }
                // A client that sends the body without waiting reads the answer once it sent it.
                let drain = { if let rest, !request.expectsContinue { rest.discardAll() } }
                response.send(refusal?.status ?? .internalServerError, text: failure.errorDescription.joined(separator: "\n"),
                              headers: headers, before: drain)
            }
        }
    }

    /// The API failure a transfer's error becomes.
    private static func transferFailure(_ error: any Error, task: String?) -> APIFailure {
        switch error {
        case let refusal as TransferRefusal: return refusal.failure
        case let failure as APIFailure: return failure
        case VDICopyError.cancelled: return APIFailure("TASK_CANCELLED", task ?? "")
        default: return APIFailure("VDI_IO_ERROR", "\(error)")
        }
    }
}
