import Foundation
import Testing
@testable import SMCore
import FakeXapi

/// The XenAPI client against an in-process fake xapi, over its Unix socket and over TCP:
/// typed callbacks, the Status/Value envelope, failures, HTTP framing and transport faults.
@Suite(.serialized) struct XenAPIClientTests {
    /// How the client reaches the fake.
    enum Transport: String, CaseIterable, CustomTestStringConvertible {
        case unix, tcp
        var testDescription: String { rawValue }
    }

    /// A running fake with one SR, and a client of it over `transport`.
    struct Harness {
        let fake: FakeXapi
        let client: XenAPIClient
        let srRef: String
        let srUUID = "7d3a1c52-6e0b-4f8e-b6a9-2c41d0e95f13"

        init(_ transport: Transport = .unix, timeout: TimeInterval = 5, subtaskOf: String? = nil) throws {
            fake = try FakeXapi(tcp: transport == .tcp)
            srRef = fake.addSR(uuid: srUUID, nameLabel: "Local storage", type: "ext",
                               smConfig: ["devserial": "scsi-1"], otherConfig: ["o_direct": "true"])
            let endpoint = transport == .tcp ? fake.tcpEndpoint! : fake.unixEndpoint
            client = XenAPIClient(endpoint: endpoint, sessionRef: fake.sessionRef, timeout: timeout, subtaskOf: subtaskOf)
        }

        func stop() {
            client.close()
            fake.stop()
        }
    }

    /// An introduction with every field away from its default.
    static func fullIntroduction(sr: String) -> XenAPIVDIIntroduction {
        XenAPIVDIIntroduction(
            uuid: "c2f4e8a1-93b7-4d25-8e6f-0a1b2c3d4e5f", nameLabel: "disk <0> & \"label\"",
            nameDescription: "Created by template provisioner", sr: sr, type: "system", sharable: true,
            readOnly: true, otherConfig: ["content_id": "abc"], location: "loc-c2f4",
            xenstoreData: ["vdi-type": "vhd"], smConfig: ["vhd-parent": "1111", "key_hash": "h"],
            managed: false, virtualSize: 10_737_418_240, physicalUtilisation: 8_704_512,
            metadataOfPool: "", isASnapshot: true, snapshotTime: "20240102T03:04:05Z",
            snapshotOf: "OpaqueRef:source", cbtEnabled: true)
    }

    /// Runs `body` and returns the XenAPIError it throws (nil when it succeeds).
    static func error(_ body: () throws(XenAPIError) -> Void) -> XenAPIError? {
        do throws(XenAPIError) {
            try body()
            return nil
        } catch {
            return error
        }
    }

    // MARK: - Typed callbacks

    @Test("VDI.db_introduce creates a record with every field as passed", arguments: Transport.allCases)
    func dbIntroduce(_ transport: Transport) throws {
        let harness = try Harness(transport, subtaskOf: "OpaqueRef:task")
        defer { harness.stop() }
        let intro = Self.fullIntroduction(sr: harness.srRef)
        let ref = try harness.client.vdiDBIntroduce(intro)
        #expect(ref.hasPrefix("OpaqueRef:"))

        let stored = try #require(harness.fake.vdis[ref])
        #expect(harness.fake.vdisByUUID[intro.uuid]?.ref == ref)
        #expect(stored.uuid == intro.uuid)
        #expect(stored.nameLabel == intro.nameLabel)
        #expect(stored.nameDescription == intro.nameDescription)
        #expect(stored.sr == harness.srRef)
        #expect(stored.type == "system")
        #expect(stored.sharable == true)
        #expect(stored.readOnly == true)
        #expect(stored.otherConfig == ["content_id": "abc"])
        #expect(stored.location == "loc-c2f4")
        #expect(stored.xenstoreData == ["vdi-type": "vhd"])
        #expect(stored.smConfig == ["vhd-parent": "1111", "key_hash": "h"])
        #expect(stored.managed == false)
        #expect(stored.virtualSize == "10737418240")
        #expect(stored.physicalUtilisation == "8704512")
        #expect(stored.metadataOfPool == "")
        #expect(stored.isASnapshot == true)
        #expect(stored.snapshotTime == "20240102T03:04:05Z")
        #expect(stored.snapshotOf == "OpaqueRef:source")
        #expect(stored.cbtEnabled == true)

        // The wire form: the session, then 19 parameters in xapi's order and XenAPI types.
        let request = try #require(harness.fake.requests.first)
        #expect(request.method == "VDI.db_introduce")
        #expect(request.params.count == 20)
        #expect(request.params[0] == .string(harness.fake.sessionRef))
        #expect(request.params[13] == .string("10737418240"))
        #expect(request.params[17] == .dateTime("20240102T03:04:05Z"))
        #expect(request.headers["originator"] == "SM")
        #expect(request.headers["subtask-of"] == "OpaqueRef:task")
        #expect(request.headers["content-type"] == "text/xml")

        // Read back through the client.
        #expect(try harness.client.vdiGetByUUID(intro.uuid) == ref)
        let record = try harness.client.vdiGetRecord(ref)
        #expect(record.uuid == intro.uuid && record.nameLabel == intro.nameLabel)
        #expect(record.nameDescription == intro.nameDescription && record.sr == harness.srRef)
        #expect(record.type == "system" && record.sharable && record.readOnly && !record.managed)
        #expect(record.otherConfig == intro.otherConfig && record.xenstoreData == intro.xenstoreData)
        #expect(record.smConfig == intro.smConfig && record.location == intro.location)
        #expect(record.virtualSize == intro.virtualSize && record.physicalUtilisation == intro.physicalUtilisation)
        #expect(record.metadataOfPool == "" && record.isASnapshot && record.snapshotTime == intro.snapshotTime)
        #expect(record.snapshotOf == "OpaqueRef:source" && record.cbtEnabled)
        #expect(try harness.client.srGetVDIs(harness.srRef) == [ref])
        #expect(harness.fake.calls == ["VDI.db_introduce", "VDI.get_by_uuid", "VDI.get_record", "SR.get_VDIs"])
    }

    @Test("db_introduce defaults are the Python SM's")
    func introductionDefaults() {
        let intro = XenAPIVDIIntroduction(uuid: "u", sr: "OpaqueRef:sr", virtualSize: 1, physicalUtilisation: 2)
        #expect(intro.parameters == [
            "u", "", "", "OpaqueRef:sr", "user", false, false, .struct([]), "u", .struct([]), .struct([]), true,
            "1", "2", "OpaqueRef:NULL", false, .dateTime("19700101T00:00:00Z"), "OpaqueRef:NULL", false,
        ])
        #expect(XenAPIDateTime.string(from: Date(timeIntervalSince1970: 0)) == XenAPIDateTime.epoch)
        #expect(XenAPIDateTime.string(from: Date(timeIntervalSince1970: 1_704_164_645)) == "20240102T03:04:05Z")
    }

    @Test("sm_config: add, remove, replace, and a duplicate key fails", arguments: Transport.allCases)
    func smConfig(_ transport: Transport) throws {
        let harness = try Harness(transport)
        defer { harness.stop() }
        let client = harness.client
        let ref = try client.vdiDBIntroduce(XenAPIVDIIntroduction(
            uuid: "u1", sr: harness.srRef, smConfig: ["vhd-parent": "p"], virtualSize: 2 << 20, physicalUtilisation: 0))

        try client.vdiAddToSMConfig(ref, key: "paused", value: "true")
        try client.vdiAddToSMConfig(ref, key: "host_OpaqueRef:h", value: "RW")
        #expect(harness.fake.vdis[ref]?.smConfig == ["vhd-parent": "p", "paused": "true", "host_OpaqueRef:h": "RW"])
        #expect(try client.vdiGetSMConfig(ref) == ["vhd-parent": "p", "paused": "true", "host_OpaqueRef:h": "RW"])

        let duplicate = Self.error { () throws(XenAPIError) in try client.vdiAddToSMConfig(ref, key: "paused", value: "x") }
        #expect(duplicate == .failure(["MAP_DUPLICATE_KEY", "VDI", "sm_config", ref, "paused"]))
        #expect(duplicate?.code == "MAP_DUPLICATE_KEY")

        try client.vdiRemoveFromSMConfig(ref, key: "paused")
        try client.vdiRemoveFromSMConfig(ref, key: "absent")
        #expect(harness.fake.vdis[ref]?.smConfig == ["vhd-parent": "p", "host_OpaqueRef:h": "RW"])

        try client.vdiSetSMConfig(ref, ["vhd-parent": "q", "vdi_type": "vhd"])
        #expect(harness.fake.vdis[ref]?.smConfig == ["vhd-parent": "q", "vdi_type": "vhd"])
        try client.vdiSetSMConfig(ref, [:])
        #expect(harness.fake.vdis[ref]?.smConfig == [:])
    }

    @Test("VDI setters and db_forget change the record")
    func vdiSetters() throws {
        let harness = try Harness()
        defer { harness.stop() }
        let client = harness.client
        let ref = try client.vdiDBIntroduce(XenAPIVDIIntroduction(uuid: "u2", sr: harness.srRef,
                                                                   virtualSize: 1, physicalUtilisation: 1))
        try client.vdiSetVirtualSize(ref, 21_474_836_480)
        try client.vdiSetPhysicalUtilisation(ref, 4_398_046_511_104)
        try client.vdiSetReadOnly(ref, true)
        try client.vdiSetManaged(ref, false)
        try client.vdiSetSnapshotOf(ref, "OpaqueRef:origin")
        try client.vdiSetIsASnapshot(ref, true)
        try client.vdiSetSnapshotTime(ref, XenAPIDateTime.string(from: Date(timeIntervalSince1970: 86_400)))
        try client.vdiSetCBTEnabled(ref, true)
        let stored = try #require(harness.fake.vdis[ref])
        #expect(stored.virtualSize == "21474836480" && stored.physicalUtilisation == "4398046511104")
        #expect(stored.readOnly && !stored.managed && stored.isASnapshot && stored.cbtEnabled)
        #expect(stored.snapshotOf == "OpaqueRef:origin" && stored.snapshotTime == "19700102T00:00:00Z")

        #expect(try client.vdiGetUUID(ref) == "u2")
        let records = try client.vdiGetAllRecordsWhere("field \"SR\" = \"\(harness.srRef)\"")
        #expect(Array(records.keys) == [ref])
        #expect(records[ref]?.virtualSize == 21_474_836_480 && records[ref]?.location == "u2")
        let otherSR = harness.fake.addSR(uuid: "empty-sr")
        #expect(try client.vdiGetAllRecordsWhere("field \"SR\" = \"\(otherSR)\"").isEmpty)

        try client.vdiDBForget(ref)
        #expect(harness.fake.vdis.isEmpty)
        let gone = Self.error { () throws(XenAPIError) in _ = try client.vdiGetByUUID("u2") }
        #expect(gone == .failure(["UUID_INVALID", "VDI", "u2"]))
        #expect(gone?.parameters == ["VDI", "u2"])
        let stale = Self.error { () throws(XenAPIError) in try client.vdiSetReadOnly(ref, false) }
        #expect(stale == .failure(["HANDLE_INVALID", "VDI", ref]))
    }

    @Test("SR stats, maps and message.create", arguments: Transport.allCases)
    func srCalls(_ transport: Transport) throws {
        let harness = try Harness(transport)
        defer { harness.stop() }
        let client = harness.client
        let sr = try client.srGetByUUID(harness.srUUID)
        #expect(sr == harness.srRef)
        try client.srSetVirtualAllocation(sr, 10_737_418_240)
        #expect(try client.srGetVirtualAllocation(sr) == 10_737_418_240)
        try client.srSetPhysicalSize(sr, 1 << 40)
        try client.srSetPhysicalUtilisation(sr, 1 << 30)
        let stored = try #require(harness.fake.sr(uuid: harness.srUUID))
        #expect(stored.virtualAllocation == "10737418240")
        #expect(stored.physicalSize == "1099511627776" && stored.physicalUtilisation == "1073741824")

        #expect(try client.srGetSMConfig(sr) == ["devserial": "scsi-1"])
        try client.srSetSMConfig(sr, ["devserial": "scsi-2", "multipathable": "true"])
        try client.srAddToSMConfig(sr, key: "use_vhd", value: "true")
        #expect(harness.fake.srs[sr]?.smConfig == ["devserial": "scsi-2", "multipathable": "true", "use_vhd": "true"])
        #expect(try client.srGetOtherConfig(sr) == ["o_direct": "true"])
        try client.srAddToOtherConfig(sr, key: "dirty", value: "")
        #expect(harness.fake.srs[sr]?.otherConfig == ["o_direct": "true", "dirty": ""])
        #expect(try client.srGetVDIs(sr) == [])

        let message = try client.messageCreate(
            name: "POST_ATTACH_SCAN_FAILED", priority: 2, objectClass: "SR", objectUUID: harness.srUUID,
            body: "Failed to scan SR \(harness.srUUID) after attaching, error x")
        #expect(message.hasPrefix("OpaqueRef:"))
        #expect(harness.fake.messages == [FakeMessage(
            ref: message, name: "POST_ATTACH_SCAN_FAILED", priority: "2", objectClass: "SR",
            objectUUID: harness.srUUID, body: "Failed to scan SR \(harness.srUUID) after attaching, error x")])
    }

    // MARK: - Failures

    @Test("XenAPI failures map to XenAPIError.failure")
    func failures() throws {
        let harness = try Harness()
        defer { harness.stop() }
        let client = harness.client
        let unknown = Self.error { () throws(XenAPIError) in _ = try client.callWithSession("VDI.frobnicate", []) }
        #expect(unknown == .failure(["MESSAGE_METHOD_UNKNOWN", "VDI.frobnicate"]))

        let noSR = Self.error { () throws(XenAPIError) in _ = try client.srGetByUUID("nope") }
        #expect(noSR == .failure(["UUID_INVALID", "SR", "nope"]))

        let badSR = Self.error { () throws(XenAPIError) in
            _ = try client.vdiDBIntroduce(XenAPIVDIIntroduction(uuid: "x", sr: "OpaqueRef:bad", virtualSize: 0, physicalUtilisation: 0))
        }
        #expect(badSR == .failure(["HANDLE_INVALID", "SR", "OpaqueRef:bad"]))

        let count = Self.error { () throws(XenAPIError) in _ = try client.callWithSession("VDI.db_forget", []) }
        #expect(count?.code == "MESSAGE_PARAMETER_COUNT_MISMATCH")

        let other = XenAPIClient(endpoint: harness.fake.unixEndpoint, sessionRef: "OpaqueRef:stale", timeout: 5)
        defer { other.close() }
        let session = Self.error { () throws(XenAPIError) in _ = try other.srGetByUUID(harness.srUUID) }
        #expect(session == .failure(["SESSION_INVALID", "OpaqueRef:stale"]))
        #expect(session?.description == "XenAPI failure: [\"SESSION_INVALID\", \"OpaqueRef:stale\"]")
        // The connection stays usable after failures.
        #expect(try client.srGetByUUID(harness.srUUID) == harness.srRef)
    }

    @Test("login_with_password makes a session; logout ends it")
    func login() throws {
        let harness = try Harness()
        defer { harness.stop() }
        harness.fake.requireCredentials(username: "root", password: "s3cret")
        let client = XenAPIClient(endpoint: harness.fake.unixEndpoint, timeout: 5)
        defer { client.close() }
        let refused = Self.error { () throws(XenAPIError) in _ = try client.sessionLoginWithPassword(username: "root", password: "wrong") }
        #expect(refused?.code == "SESSION_AUTHENTICATION_FAILED")
        #expect(refused.map { "\($0)".contains("wrong") } == false)
        let session = try client.sessionLoginWithPassword(username: "root", password: "s3cret")
        #expect(client.sessionRef == session)
        #expect(try client.srGetByUUID(harness.srUUID) == harness.srRef)
        try client.sessionLogout()
        #expect(client.sessionRef == XenAPIClient.nullRef)
        let after = Self.error { () throws(XenAPIError) in
            _ = try client.call("SR.get_by_uuid", [.string(session), .string(harness.srUUID)])
        }
        #expect(after == .failure(["SESSION_INVALID", session]))
    }

    // MARK: - HTTP framing and connection handling

    @Test("one connection carries many calls")
    func keepAlive() throws {
        let harness = try Harness()
        defer { harness.stop() }
        for _ in 0..<5 { _ = try harness.client.srGetByUUID(harness.srUUID) }
        #expect(harness.fake.connectionsAccepted == 1)
    }

    @Test("an idle connection xapi dropped is replaced transparently")
    func droppedIdleConnection() throws {
        let harness = try Harness()
        defer { harness.stop() }
        harness.fake.dropConnectionsAfterResponse = true
        for _ in 0..<3 {
            #expect(try harness.client.srGetByUUID(harness.srUUID) == harness.srRef)
            Thread.sleep(forTimeInterval: 0.02)
        }
        #expect(harness.fake.connectionsAccepted == 3)
        #expect(harness.fake.calls.count == 3)
    }

    @Test("chunked responses parse", arguments: [1, 7, 100, 65536])
    func chunked(_ chunkSize: Int) throws {
        let harness = try Harness(.tcp)
        defer { harness.stop() }
        harness.fake.responseMode = .chunked(chunkSize: chunkSize)
        let ref = try harness.client.vdiDBIntroduce(Self.fullIntroduction(sr: harness.srRef))
        let record = try harness.client.vdiGetRecord(ref)
        #expect(record.smConfig == ["vhd-parent": "1111", "key_hash": "h"])
        #expect(record.nameLabel == "disk <0> & \"label\"")
        #expect(harness.fake.connectionsAccepted == 1)
    }

    @Test("a body ended by closing the connection parses, and the next call reconnects")
    func untilClose() throws {
        let harness = try Harness()
        defer { harness.stop() }
        harness.fake.responseMode = .untilClose
        #expect(try harness.client.srGetByUUID(harness.srUUID) == harness.srRef)
        #expect(try harness.client.srGetSMConfig(harness.srRef) == ["devserial": "scsi-1"])
        #expect(harness.fake.connectionsAccepted == 2)
    }

    @Test("a server that closes mid-response gives .transport", arguments: [5, 40, 150])
    func closedMidResponse(_ afterBytes: Int) throws {
        let harness = try Harness()
        defer { harness.stop() }
        harness.fake.responseMode = .truncated(afterBytes: afterBytes)
        let started = ContinuousClock.now
        let error = Self.error { () throws(XenAPIError) in _ = try harness.client.srGetByUUID(harness.srUUID) }
        guard case .transport(let message) = error else {
            Issue.record("expected .transport, got \(String(describing: error))")
            return
        }
        #expect(message.contains("closed"))
        #expect(ContinuousClock.now - started < .seconds(2))
        // Not retried: the call may have had its effect.
        #expect(harness.fake.calls.count == 1)
        harness.fake.responseMode = .contentLength
        #expect(try harness.client.srGetByUUID(harness.srUUID) == harness.srRef)
    }

    @Test("a server that never answers gives .transport within the timeout", arguments: Transport.allCases)
    func neverAnswers(_ transport: Transport) throws {
        let harness = try Harness(transport, timeout: 0.3)
        defer { harness.stop() }
        harness.fake.responseMode = .silent
        let started = ContinuousClock.now
        let error = Self.error { () throws(XenAPIError) in _ = try harness.client.srGetByUUID(harness.srUUID) }
        let elapsed = ContinuousClock.now - started
        guard case .transport(let message) = error else {
            Issue.record("expected .transport, got \(String(describing: error))")
            return
        }
        #expect(message.contains("timed out"))
        #expect(elapsed >= .milliseconds(250) && elapsed < .seconds(3))
        harness.fake.responseMode = .contentLength
        #expect(try harness.client.srGetByUUID(harness.srUUID) == harness.srRef)
    }

    @Test("an HTTP error status gives .protocolError")
    func httpStatus() throws {
        let harness = try Harness()
        defer { harness.stop() }
        harness.fake.responseMode = .httpStatus(500)
        let error = Self.error { () throws(XenAPIError) in _ = try harness.client.srGetByUUID(harness.srUUID) }
        guard case .protocolError(let message) = error else {
            Issue.record("expected .protocolError, got \(String(describing: error))")
            return
        }
        #expect(message.contains("HTTP 500"))
    }

    @Test("an endpoint nobody listens on gives .transport")
    func nobodyListening() throws {
        let path = NSTemporaryDirectory() + "no-xapi-\(UUID().uuidString.prefix(8))"
        let client = XenAPIClient(endpoint: .unix(path: path), timeout: 1)
        let error = Self.error { () throws(XenAPIError) in _ = try client.srGetByUUID("x") }
        guard case .transport(let message) = error else {
            Issue.record("expected .transport, got \(String(describing: error))")
            return
        }
        #expect(message.contains(path))
        let tcp = XenAPIClient(endpoint: .tcp(host: "127.0.0.1", port: 1, path: "/"), timeout: 1)
        guard case .transport = Self.error({ () throws(XenAPIError) in _ = try tcp.srGetByUUID("x") }) else {
            Issue.record("expected .transport over TCP")
            return
        }
    }

    @Test("the client may be shared between threads")
    func concurrentCalls() throws {
        let harness = try Harness()
        defer { harness.stop() }
        let client = harness.client
        let srUUID = harness.srUUID
        let failures = ConcurrentCounter()
        DispatchQueue.concurrentPerform(iterations: 16) { _ in
            if (try? client.srGetByUUID(srUUID)) == nil { failures.increment() }
        }
        #expect(failures.value == 0)
        #expect(harness.fake.calls.count == 16)
    }

    // MARK: - Endpoints

    @Test("endpoints parse from URLs and socket paths")
    func endpoints() throws {
        #expect(try XenAPIEndpoint(parsing: "/var/lib/xcp/xapi") == .unix(path: "/var/lib/xcp/xapi"))
        #expect(try XenAPIEndpoint(parsing: "unix:///tmp/x") == .unix(path: "/tmp/x"))
        #expect(try XenAPIEndpoint(parsing: "unix:/tmp/x") == .unix(path: "/tmp/x"))
        #expect(try XenAPIEndpoint(parsing: "http://127.0.0.1:8080") == .tcp(host: "127.0.0.1", port: 8080, path: "/"))
        #expect(try XenAPIEndpoint(parsing: "http://xapi.example") == .tcp(host: "xapi.example", port: 80, path: "/"))
        #expect(try XenAPIEndpoint(parsing: "http://[::1]:443/RPC2") == .tcp(host: "::1", port: 443, path: "/RPC2"))
        for bad in ["https://h", "ftp://h", "http://:80", "http://h:0", "http://h:99999", "http://u:p@h", "unix:rel"] {
            #expect(throws: XenAPIError.self, "\(bad)") { try XenAPIEndpoint(parsing: bad) }
        }
        #expect(try XenAPIEndpoint.fromEnvironment([:]) == .unix(path: "/var/lib/xcp/xapi"))
        #expect(try XenAPIEndpoint.fromEnvironment(["SWIFTSM_XAPI_URL": "http://10.0.0.1:80"])
                == .tcp(host: "10.0.0.1", port: 80, path: "/"))
        #expect(XenAPIEndpoint.tcp(host: "::1", port: 80, path: "/").description == "http://[::1]:80/")
    }

    @Test("a client configured from the environment reaches the fake")
    func fromEnvironment() throws {
        let fake = try FakeXapi(tcp: true)
        defer { fake.stop() }
        let sr = fake.addSR(uuid: "env-sr")
        let client = try XenAPIClient(environment: ["SWIFTSM_XAPI_URL": "http://127.0.0.1:\(fake.tcpPort!)",
                                                    "ORIGINATOR": "SM-test"],
                                      sessionRef: fake.sessionRef, timeout: 5)
        defer { client.close() }
        #expect(try client.srGetByUUID("env-sr") == sr)
        #expect(fake.requests.first?.headers["originator"] == "SM-test")
        #expect(fake.requests.first?.headers["subtask-of"] == nil)
    }
}

/// A thread-safe counter for tests that call from several threads.
final class ConcurrentCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    /// Adds one.
    func increment() { lock.withLock { count += 1 } }
    /// The current count.
    var value: Int { lock.withLock { count } }
}
