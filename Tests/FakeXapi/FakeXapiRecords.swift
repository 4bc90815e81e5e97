import Foundation
import SMCore

/// A VDI record in the fake xapi's database: every field `VDI.db_introduce` sets, as xapi keeps it
/// (sizes as the decimal strings XenAPI carries them in).
public struct FakeVDI: Sendable, Hashable {
    public var ref: String
    public var uuid: String
    public var nameLabel: String
    public var nameDescription: String
    public var sr: String
    public var type: String
    public var sharable: Bool
    public var readOnly: Bool
    public var otherConfig: [String: String]
    public var location: String
    public var xenstoreData: [String: String]
    public var smConfig: [String: String]
    public var managed: Bool
    public var virtualSize: String
    public var physicalUtilisation: String
    public var metadataOfPool: String
    public var isASnapshot: Bool
    public var snapshotTime: String
    public var snapshotOf: String
    public var cbtEnabled: Bool
    public var missing = false

    /// The record as `VDI.get_record` returns it (the fields a driver sees, plus xapi's usual extras).
    public var xmlrpc: XMLRPCValue {
        .struct([
            XMLRPCMember("uuid", .string(uuid)),
            XMLRPCMember("name_label", .string(nameLabel)),
            XMLRPCMember("name_description", .string(nameDescription)),
            XMLRPCMember("allowed_operations", .array([])),
            XMLRPCMember("current_operations", .struct([])),
            XMLRPCMember("SR", .string(sr)),
            XMLRPCMember("VBDs", .array([])),
            XMLRPCMember("crash_dumps", .array([])),
            XMLRPCMember("virtual_size", .string(virtualSize)),
            XMLRPCMember("physical_utilisation", .string(physicalUtilisation)),
            XMLRPCMember("type", .string(type)),
            XMLRPCMember("sharable", .boolean(sharable)),
            XMLRPCMember("read_only", .boolean(readOnly)),
            XMLRPCMember("other_config", FakeVDI.map(otherConfig)),
            XMLRPCMember("storage_lock", .boolean(false)),
            XMLRPCMember("location", .string(location)),
            XMLRPCMember("managed", .boolean(managed)),
            XMLRPCMember("missing", .boolean(missing)),
            XMLRPCMember("parent", .string(XenAPIClient.nullRef)),
            XMLRPCMember("xenstore_data", FakeVDI.map(xenstoreData)),
            XMLRPCMember("sm_config", FakeVDI.map(smConfig)),
            XMLRPCMember("is_a_snapshot", .boolean(isASnapshot)),
            XMLRPCMember("snapshot_of", .string(snapshotOf)),
            XMLRPCMember("snapshots", .array([])),
            XMLRPCMember("snapshot_time", .dateTime(snapshotTime)),
            XMLRPCMember("tags", .array([])),
            XMLRPCMember("allow_caching", .boolean(false)),
            XMLRPCMember("on_boot", .string("persist")),
            XMLRPCMember("metadata_of_pool", .string(metadataOfPool)),
            XMLRPCMember("metadata_latest", .boolean(false)),
            XMLRPCMember("is_tools_iso", .boolean(false)),
            XMLRPCMember("cbt_enabled", .boolean(cbtEnabled)),
        ])
    }

    /// A string map as an XML-RPC struct, sorted by key.
    public static func map(_ map: [String: String]) -> XMLRPCValue {
        .struct(map.sorted { $0.key < $1.key }.map { XMLRPCMember($0.key, .string($0.value)) })
    }
}

/// An SR record in the fake xapi's database.
public struct FakeSR: Sendable, Hashable {
    public var ref: String
    public var uuid: String
    public var nameLabel: String
    public var nameDescription: String
    public var type: String
    public var contentType: String
    public var shared: Bool
    public var physicalSize: String
    public var physicalUtilisation: String
    public var virtualAllocation: String
    public var smConfig: [String: String]
    public var otherConfig: [String: String]

    /// The record as `SR.get_record` returns it; `vdis` are the refs of its VDIs.
    public func xmlrpc(vdis: [String]) -> XMLRPCValue {
        .struct([
            XMLRPCMember("uuid", .string(uuid)),
            XMLRPCMember("name_label", .string(nameLabel)),
            XMLRPCMember("name_description", .string(nameDescription)),
            XMLRPCMember("allowed_operations", .array([])),
            XMLRPCMember("current_operations", .struct([])),
            XMLRPCMember("VDIs", .array(vdis.map { .string($0) })),
            XMLRPCMember("PBDs", .array([])),
            XMLRPCMember("virtual_allocation", .string(virtualAllocation)),
            XMLRPCMember("physical_utilisation", .string(physicalUtilisation)),
            XMLRPCMember("physical_size", .string(physicalSize)),
            XMLRPCMember("type", .string(type)),
            XMLRPCMember("content_type", .string(contentType)),
            XMLRPCMember("shared", .boolean(shared)),
            XMLRPCMember("other_config", FakeVDI.map(otherConfig)),
            XMLRPCMember("tags", .array([])),
            XMLRPCMember("sm_config", FakeVDI.map(smConfig)),
            XMLRPCMember("blobs", .struct([])),
            XMLRPCMember("local_cache_enabled", .boolean(false)),
            XMLRPCMember("introduced_by", .string(XenAPIClient.nullRef)),
            XMLRPCMember("clustered", .boolean(false)),
            XMLRPCMember("is_tools_sr", .boolean(false)),
        ])
    }
}

/// A message raised with `message.create`.
public struct FakeMessage: Sendable, Hashable {
    public var ref: String
    public var name: String
    public var priority: String
    public var objectClass: String
    public var objectUUID: String
    public var body: String

    /// A message record.
    public init(ref: String, name: String, priority: String, objectClass: String, objectUUID: String, body: String) {
        self.ref = ref; self.name = name; self.priority = priority
        self.objectClass = objectClass; self.objectUUID = objectUUID; self.body = body
    }
}

/// One request the fake received: the XML-RPC call and the HTTP header fields (names lower-cased).
public struct FakeXapiRequest: Sendable {
    public var method: String
    public var params: [XMLRPCValue]
    public var headers: [String: String]

    /// A recorded request.
    public init(method: String, params: [XMLRPCValue], headers: [String: String]) {
        self.method = method; self.params = params; self.headers = headers
    }
}

/// A PBD record: the host and SR it joins, and its `other_config`.
public struct FakePBD: Sendable, Equatable {
    /// The host's ref.
    public var host: String
    /// The SR's ref.
    public var sr: String
    /// `other_config`.
    public var otherConfig: [String: String]

    /// A PBD of `sr` on `host`.
    public init(host: String, sr: String, otherConfig: [String: String] = [:]) {
        self.host = host
        self.sr = sr
        self.otherConfig = otherConfig
    }
}
