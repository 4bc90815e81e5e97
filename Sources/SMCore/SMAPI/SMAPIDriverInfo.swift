/// The DRIVER_INFO result of `sr_get_driver_info`: who the driver is, what it can do and
/// which `device_config` keys it takes.
public struct SMAPIDriverInfo: Sendable, Hashable {
    /// One `device_config` key the driver documents.
    public struct ConfigurationKey: Sendable, Hashable {
        /// The key, e.g. `server`.
        public var key: String
        /// What the key means, e.g. `hostname or IP address of NFS server (required)`.
        public var description: String

        /// A documented key.
        public init(key: String, description: String) {
            self.key = key
            self.description = description
        }
    }

    /// `name`, e.g. `NFS VHD`.
    public var name: String
    /// `description`: one sentence about the driver.
    public var description: String
    /// `vendor`.
    public var vendor: String
    /// `copyright`.
    public var copyright: String
    /// `driver_version`, e.g. `1.0`.
    public var driverVersion: String
    /// `required_api_version`, `1.0` for SMAPIv1.
    public var requiredAPIVersion: String
    /// `capabilities`: `NAME` or `NAME/<version>` strings, e.g. `VDI_RESET_ON_BOOT/2`.
    public var capabilities: [String]
    /// `configuration`: the documented `device_config` keys.
    public var configuration: [ConfigurationKey]
    /// `supported_image_formats` (newer xapi), absent when nil.
    public var supportedImageFormats: [String]?

    /// Driver info with the given fields.
    public init(name: String, description: String, vendor: String, copyright: String,
                driverVersion: String, requiredAPIVersion: String = "1.0", capabilities: [String],
                configuration: [ConfigurationKey], supportedImageFormats: [String]? = nil) {
        self.name = name
        self.description = description
        self.vendor = vendor
        self.copyright = copyright
        self.driverVersion = driverVersion
        self.requiredAPIVersion = requiredAPIVersion
        self.capabilities = capabilities
        self.configuration = configuration
        self.supportedImageFormats = supportedImageFormats
    }

    /// Reads the result the way xapi's `parse_sr_get_driver_info` does (capabilities kept verbatim).
    public init(_ value: XMLRPCValue) throws(SMAPIResultError) {
        let reader = try SMAPIResultReader(value)
        guard let configurationValue = reader.field("configuration") else { throw .missingField("configuration") }
        guard let items = configurationValue.arrayValue else {
            throw .wrongFieldType("configuration", expected: "array of structs", found: configurationValue.typeName)
        }
        var configuration: [ConfigurationKey] = []
        for item in items {
            let entry = try SMAPIResultReader(item)
            configuration.append(ConfigurationKey(key: try entry.string("key"), description: try entry.string("description")))
        }
        self.init(name: try reader.string("name"), description: try reader.string("description"),
                  vendor: try reader.string("vendor"), copyright: try reader.string("copyright"),
                  driverVersion: try reader.string("driver_version"),
                  requiredAPIVersion: try reader.string("required_api_version"),
                  capabilities: try reader.strings("capabilities"), configuration: configuration,
                  supportedImageFormats: try reader.optionalStrings("supported_image_formats"))
    }

    /// The capabilities as advertised: like the Python SM (`util.sr_get_driver_info`), a driver
    /// with `ATOMIC_PAUSE` also advertises `VDI_ACTIVATE` and `VDI_DEACTIVATE` (appended if missing).
    public var advertisedCapabilities: [String] {
        var advertised = capabilities
        if advertised.contains("ATOMIC_PAUSE") {
            for implied in ["VDI_ACTIVATE", "VDI_DEACTIVATE"] where !advertised.contains(implied) {
                advertised.append(implied)
            }
        }
        return advertised
    }

    /// The struct as the Python SM prints it: the six strings, `capabilities` (advertised),
    /// `configuration` (`{key, description}` structs), then `supported_image_formats` if set.
    public var xmlrpcValue: XMLRPCValue {
        var members: [XMLRPCMember] = [
            XMLRPCMember("name", .string(name)),
            XMLRPCMember("description", .string(description)),
            XMLRPCMember("vendor", .string(vendor)),
            XMLRPCMember("copyright", .string(copyright)),
            XMLRPCMember("driver_version", .string(driverVersion)),
            XMLRPCMember("required_api_version", .string(requiredAPIVersion)),
            XMLRPCMember("capabilities", .array(advertisedCapabilities.map(XMLRPCValue.string))),
            XMLRPCMember("configuration", .array(configuration.map {
                .struct([XMLRPCMember("key", .string($0.key)), XMLRPCMember("description", .string($0.description))])
            })),
        ]
        if let supportedImageFormats {
            members.append(XMLRPCMember("supported_image_formats", .array(supportedImageFormats.map(XMLRPCValue.string))))
        }
        return .struct(members)
    }
}
