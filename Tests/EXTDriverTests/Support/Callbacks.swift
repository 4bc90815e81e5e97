import FakeXapi
import Foundation
import SMCore

/// One recorded `VDI.db_introduce` call, its 19 parameters after the session by name
/// (`responses.md` §5.2, DB-INTRODUCE), as they were sent on the wire.
struct DBIntroduce: CustomStringConvertible {
    /// The raw parameters after the session.
    let params: [XMLRPCValue]

    init?(_ request: FakeXapiRequest) {
        guard request.method == "VDI.db_introduce" else { return nil }
        params = Array(request.params.dropFirst())
    }

    var count: Int { params.count }
    private func s(_ i: Int) -> String? { i < params.count ? params[i].stringValue : nil }
    private func b(_ i: Int) -> Bool? { i < params.count ? params[i].boolValue : nil }
    private func m(_ i: Int) -> [String: String]? {
        guard i < params.count, let members = params[i].structMembers else { return nil }
        return Dictionary(members.map { ($0.name, $0.value.stringValue ?? "<\($0.value.typeName)>") }) { a, _ in a }
    }

    var uuid: String? { s(0) }
    var nameLabel: String? { s(1) }
    var nameDescription: String? { s(2) }
    var sr: String? { s(3) }
    var type: String? { s(4) }
    var sharable: Bool? { b(5) }
    var readOnly: Bool? { b(6) }
    var otherConfig: [String: String]? { m(7) }
    var location: String? { s(8) }
    var xenstoreData: [String: String]? { m(9) }
    var smConfig: [String: String]? { m(10) }
    var managed: Bool? { b(11) }
    /// Integers travel as decimal strings in XenAPI.
    var virtualSize: String? { s(12) }
    var physicalUtilisation: String? { s(13) }
    var metadataOfPool: String? { s(14) }
    var isASnapshot: Bool? { b(15) }
    /// A `dateTime.iso8601` value.
    var snapshotTime: XMLRPCValue? { params.count > 16 ? params[16] : nil }
    var snapshotOf: String? { s(17) }
    var cbtEnabled: Bool? { b(18) }

    var description: String { "db_introduce(\(params))" }
}

extension FakeXapi {
    /// The `VDI.db_introduce` calls recorded since the last `clearCalls()`, in order.
    var introductions: [DBIntroduce] { requests.compactMap(DBIntroduce.init) }

    /// The first parameter after the session of each recorded call to `method`.
    func firstArguments(of method: String) -> [XMLRPCValue] {
        requests.filter { $0.method == method }.compactMap { $0.params.dropFirst().first }
    }

    /// The parameters after the session of each recorded call to `method`.
    func arguments(of method: String) -> [[XMLRPCValue]] {
        requests.filter { $0.method == method }.map { Array($0.params.dropFirst()) }
    }

    /// The sessions used by the calls recorded since the last `clearCalls()`.
    var sessionsUsed: Set<String> { Set(requests.compactMap { $0.params.first?.stringValue }) }
}
