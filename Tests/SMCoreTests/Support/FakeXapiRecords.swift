import Foundation
@testable import SMCore

/// A VDI record in the fake xapi's database: every field `VDI.db_introduce` sets, as xapi keeps it
/// (sizes as the decimal strings XenAPI carries them in).
struct FakeVDI: Sendable, Hashable {
    var ref: String
    var uuid: String
    var nameLabel: String
    var nameDescription: String
    var sr: String
    var type: String
    var sharable: Bool
    var readOnly: Bool
    var otherConfig: [String: String]
    var location: String
    var xenstoreData: [String: String]
    var smConfig: [String: String]
    var managed: Bool
    var virtualSize: String
    var physicalUtilisation: String
    var metadataOfPool: String
    var isASnapshot: Bool
    var snapshotTime: String
    var snapshotOf: String
    var cbtEnabled: Bool
    var missing = false

    /// The record as `VDI.get_record` returns it (the fields a driver sees, plus xapi's usual extras).
    var xmlrpc: XMLRPCValue {
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
    static func map(_ map: [String: String]) -> XMLRPCValue {
        .struct(map.sorted { $0.key < $1.key }.map { XMLRPCMember($0.key, .string($0.value)) })
    }
}

/// An SR record in the fake xapi's database.
struct FakeSR: Sendable, Hashable {
    var ref: String
    var uuid: String
    var nameLabel: String
    var nameDescription: String
    var type: String
    var contentType: String
    var shared: Bool
    var physicalSize: String
    var physicalUtilisation: String
    var virtualAllocation: String
    var smConfig: [String: String]
    var otherConfig: [String: String]

    /// The record as `SR.get_record` returns it; `vdis` are the refs of its VDIs.
    func xmlrpc(vdis: [String]) -> XMLRPCValue {
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
struct FakeMessage: Sendable, Hashable {
    var ref: String
    var name: String
    var priority: String
    var objectClass: String
    var objectUUID: String
    var body: String
}

/// One request the fake received: the XML-RPC call and the HTTP header fields (names lower-cased).
struct FakeXapiRequest: Sendable {
    var method: String
    var params: [XMLRPCValue]
    var headers: [String: String]
}
