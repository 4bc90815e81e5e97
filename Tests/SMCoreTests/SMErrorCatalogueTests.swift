import Foundation
import Testing
@testable import SMCore

/// The generated catalogue matches errorcodes.tsv, and faults read exactly like the Python SM's.
@Suite struct SMErrorCatalogueTests {
    @Test("the catalogue holds every row of errorcodes.tsv, in order, verbatim")
    func matchesTable() throws {
        let rows = try Fixtures.errorCodes()
        #expect(rows.count == 173)
        #expect(SMErrorCatalogue.entries.count == rows.count)
        for (entry, row) in zip(SMErrorCatalogue.entries, rows) {
            #expect(entry == SMErrorCode(code: row.code, name: row.name, message: row.message))
        }
    }

    @Test("lookup by name and by code")
    func lookup() {
        #expect(SMErrorCatalogue.entry(named: "VDIUnavailable") == .VDIUnavailable)
        #expect(SMErrorCatalogue.entry(code: 46) == .VDIUnavailable)
        #expect(SMErrorCatalogue.entry(code: 143)?.name == "BadRequest")
        #expect(SMErrorCatalogue.entry(named: "BadRequest")?.message == "Failed to parse the request")
        #expect(SMErrorCatalogue.entry(code: 1200) == .GenericException)
        #expect(SMErrorCatalogue.entry(named: "NoSuchError") == nil)
        #expect(SMErrorCatalogue.entry(code: 9999) == nil)
        for entry in SMErrorCatalogue.entries {
            #expect(SMErrorCatalogue.entry(named: entry.name) == entry)
            #expect(SMErrorCatalogue.entry(code: entry.code) == entry)
        }
    }

    @Test("faultString is `<message> [opterr=<detail>]`, detail only when given")
    func faultString() {
        #expect(SMAPIError(.SRNoSpace).faultString == "There is insufficient space")
        #expect(SMAPIError(.SRNoSpace, opterr: "need 10 GiB").faultString == "There is insufficient space [opterr=need 10 GiB]")
        #expect(SMAPIError(.SRNoSpace, opterr: "").faultString == "There is insufficient space [opterr=]")
        // Code 40's message ends with a space, hence two spaces before the detail.
        #expect(SMAPIError(named: "SRScan", opterr: "boom").faultString == "The SR scan failed  [opterr=boom]")
        #expect(SMAPIError(named: "SRScan").fault == XMLRPCFault(code: 40, string: "The SR scan failed "))
        #expect(SMAPIError.generic("'NoneType' object has no attribute 'xenapi'").fault ==
            XMLRPCFault(code: 1200, string: "'NoneType' object has no attribute 'xenapi'"))
    }

    @Test("an unknown key reports code 1 like xs_errors")
    func unknownKey() {
        let error = SMAPIError(named: "NoSuchKey", opterr: "ignored")
        #expect(error.code == 1)
        #expect(error.faultString == "Error reporting error, unknown key NoSuchKey")
    }

    @Test("a fault read back recovers code, name and detail")
    func fromFault() {
        let detailed = SMAPIError(fault: XMLRPCFault(code: 46, string: "The VDI is not available [opterr=VDI x not found]"))
        #expect(detailed == SMAPIError(.VDIUnavailable, opterr: "VDI x not found"))
        #expect(SMAPIError(fault: XMLRPCFault(code: 40, string: "The SR scan failed  [opterr=]")) == SMAPIError(.SRScan, opterr: ""))
        #expect(SMAPIError(fault: XMLRPCFault(code: 44, string: "There is insufficient space")) == SMAPIError(.SRNoSpace))
        let generic = SMAPIError(fault: XMLRPCFault(code: 1200, string: "boom [opterr=x]"))
        #expect(generic == .generic("boom [opterr=x]"))
        let foreign = SMAPIError(fault: XMLRPCFault(code: 7777, string: "odd"))
        #expect(foreign.name == "" && foreign.faultString == "odd" && foreign.entry == nil)
        let mismatch = SMAPIError(fault: XMLRPCFault(code: 46, string: "something else"))
        #expect(mismatch.opterr == nil && mismatch.faultString == "something else")
    }

    @Test("fault documents of responses.md §3 are reproduced byte for byte")
    func literalFaults() throws {
        let missing = SMAPIError(.VDIUnavailable, opterr: "VDI c2f4e8a1-93b7-4d25-8e6f-0a1b2c3d4e5f not found")
        #expect(SMAPIResponse.text(SMAPIResponse.fault(missing)) == ResponseLiterals.faultVDIUnavailable)
        let generic = SMAPIError.generic("'NoneType' object has no attribute 'xenapi'")
        #expect(SMAPIResponse.text(SMAPIResponse.fault(generic)) == ResponseLiterals.faultGeneric)
        let decoded = try XMLRPCDecoder().decodeMethodResponse(ResponseLiterals.faultVDIUnavailable)
        #expect(decoded.faultValue.map(SMAPIError.init(fault:)) == missing)
    }

    @Test("commands map escaping failures to the Python SM's per-command codes")
    func failureCodes() {
        #expect(SMAPICommand.srScan.failureCode.code == 40)
        #expect(SMAPICommand.vdiCreate.failureCode.code == 78)
        #expect(SMAPICommand.vdiDelete.failureCode.code == 80)
        #expect(SMAPICommand.vdiActivate.failureCode.code == 46)
        #expect(SMAPICommand.vdiResizeOnline.failureCode.code == 110)
        #expect(SMAPICommand.vdiSnapshot.failureCode.code == 82)
        #expect(SMAPICommand.vdiClone.failureCode.code == 81)
        #expect(SMAPICommand.srAttach.failureCode.code == 202)
    }
}
