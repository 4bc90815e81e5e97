import Logging
import Testing
@testable import EXTDriver
@testable import SMCore

/// The EXT driver's static answers through the SMAPI service.
@Suite struct DriverInfoTests {
    @Test func driverInfoAdvertisesOnlyWhatWorks() throws {
        let service = SMAPIService(driver: EXTDriver(), run: RunDirectory(root: "/tmp/swiftsm-test-run"),
                                   log: Logger(label: "test")) { _ in NoCallbacks() }
        let response = service.handle(SMAPIRequest(command: .srGetDriverInfo))
        let info = try SMAPIDriverInfo(try #require(response.value))
        #expect(info.capabilities.contains("VDI_SNAPSHOT"))
        for c in ["VDI_ATTACH", "VDI_DETACH", "VDI_ACTIVATE", "VDI_DEACTIVATE", "ATOMIC_PAUSE"] {
            #expect(info.capabilities.contains(c), "the data path serves attached VDIs over NBD")
        }
        #expect(info.configuration.map(\.key) == ["device", "path"])
    }

    @Test func missingDeviceConfigIsFault90() throws {
        let service = SMAPIService(driver: EXTDriver(), run: RunDirectory(root: "/tmp/swiftsm-test-run"),
                                   log: Logger(label: "test")) { _ in NoCallbacks() }
        let r = service.handle(SMAPIRequest(command: .srCreate, args: ["0"], deviceConfig: ["SRmaster": "true"],
                                            srUUID: "0d7c31b8-2f7e-4d4c-9a5e-3b1f7a1c2d3e"))
        #expect(r.faultValue?.code == 90)
    }
}
