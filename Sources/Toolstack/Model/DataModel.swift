import XenAPIWire

/// The XenAPI classes toolstackd serves, with xapi's field names and types.
public enum DataModel {
    private typealias F = FieldSpec

    /// `pool`.
    public static let pool = ClassSpec("pool", [
        F("name_label", .string, .readWrite), F("name_description", .string, .readWrite),
        F("master", .ref("host")), F("default_SR", .ref("SR"), .readWrite),
        F("suspend_image_SR", .ref("SR"), .readWrite), F("crash_dump_SR", .ref("SR"), .readWrite),
        F("ha_enabled", .bool), F("redo_log_enabled", .bool),
        F("other_config", .map, .readWrite), F("tags", .set(.string), .readWrite),
    ])

    /// `host`.
    public static let host = ClassSpec("host", operations: ["provision", "evacuate", "shutdown", "reboot"], [
        F("name_label", .string, .readWrite), F("name_description", .string, .readWrite),
        F("allowed_operations", .set(.string)), F("current_operations", .map),
        F("API_version_major", .int, default: .string("2")), F("API_version_minor", .int, default: .string("21")),
        F("API_version_vendor", .string, default: .string("SwiftSM")),
        F("enabled", .bool, default: .boolean(true)), F("software_version", .map),
        F("other_config", .map, .readWrite), F("capabilities", .set(.string)),
        .reverse("PBDs", "PBD", "host"), .reverse("PIFs", "PIF", "host"),
        .reverse("resident_VMs", "VM", "resident_on"),
        F("hostname", .string), F("address", .string), F("suspend_image_sr", .ref("SR"), .readWrite),
        F("crash_dump_sr", .ref("SR"), .readWrite), F("tags", .set(.string), .readWrite),
        // The host's TLS certificate (PEM, no key), so that any host of a pool can answer
        // `host.get_server_certificate` and `VDI.get_nbd_info` for it.
        F("server_certificate", .string),
    ])

    /// `SM`: one storage driver, from its `sr_get_driver_info`.
    public static let sm = ClassSpec("SM", [
        F("name_label", .string), F("name_description", .string), F("type", .string), F("vendor", .string),
        F("copyright", .string), F("version", .string), F("required_api_version", .string),
        F("configuration", .map), F("capabilities", .set(.string)), F("features", .map),
        F("other_config", .map, .readWrite), F("driver_filename", .string),
        F("required_cluster_stack", .set(.string)), F("supported_image_formats", .set(.string)),
    ])

    /// `SR`.
    public static let sr = ClassSpec("SR", operations: [
        "scan", "destroy", "forget", "plug", "unplug", "update", "vdi_create", "vdi_introduce", "vdi_destroy",
        "vdi_resize", "vdi_clone", "vdi_snapshot", "pbd_create", "pbd_destroy",
    ], [
        F("name_label", .string, .readWrite), F("name_description", .string, .readWrite),
        F("allowed_operations", .set(.string)), F("current_operations", .map),
        .reverse("VDIs", "VDI", "SR"), .reverse("PBDs", "PBD", "SR"),
        F("virtual_allocation", .int, .internalWrite), F("physical_utilisation", .int, .internalWrite),
        F("physical_size", .int, .internalWrite), F("type", .string), F("content_type", .string),
        F("shared", .bool, .readWrite), F("other_config", .map, .readWrite), F("tags", .set(.string), .readWrite),
        F("sm_config", .map, .internalWrite), F("blobs", .map), F("local_cache_enabled", .bool),
        F("introduced_by", .ref("DR_task")), F("clustered", .bool), F("is_tools_sr", .bool),
    ])

    /// `PBD`: an SR plugged on a host.
    public static let pbd = ClassSpec("PBD", [
        F("host", .ref("host")), F("SR", .ref("SR")), F("device_config", .map, .internalWrite),
        F("currently_attached", .bool), F("other_config", .map, .readWrite),
    ])

    /// `VDI`.
    public static let vdi = ClassSpec("VDI", operations: [
        "clone", "copy", "resize", "resize_online", "snapshot", "destroy", "forget", "update", "mirror",
        "generate_config",
    ], [
        F("name_label", .string, .readWrite), F("name_description", .string, .readWrite),
        F("allowed_operations", .set(.string)), F("current_operations", .map),
        F("SR", .ref("SR")), .reverse("VBDs", "VBD", "VDI"), F("crash_dumps", .set(.ref("crashdump"))),
        F("virtual_size", .int, .internalWrite), F("physical_utilisation", .int, .internalWrite),
        F("type", .string, default: .string("user")), F("sharable", .bool, .internalWrite),
        F("read_only", .bool, .internalWrite), F("other_config", .map, .readWrite), F("storage_lock", .bool),
        F("location", .string), F("managed", .bool, .internalWrite, default: .boolean(true)),
        F("missing", .bool, .internalWrite), F("parent", .ref("VDI")), F("xenstore_data", .map, .internalWrite),
        F("sm_config", .map, .internalWrite), F("is_a_snapshot", .bool, .internalWrite),
        F("snapshot_of", .ref("VDI"), .internalWrite), .reverse("snapshots", "VDI", "snapshot_of"),
        F("snapshot_time", .dateTime, .internalWrite), F("tags", .set(.string), .readWrite),
        F("allow_caching", .bool, .readWrite), F("on_boot", .string, .readWrite, default: .string("persist")),
        F("metadata_of_pool", .ref("pool"), .internalWrite), F("metadata_latest", .bool),
        F("is_tools_iso", .bool), F("cbt_enabled", .bool, .internalWrite),
    ])

    /// `VBD`: a VDI plugged into a VM.
    public static let vbd = ClassSpec("VBD", operations: ["attach", "plug", "unplug", "unplug_force", "pause", "unpause"], [
        F("allowed_operations", .set(.string)), F("current_operations", .map),
        F("VM", .ref("VM")), F("VDI", .ref("VDI")), F("device", .string), F("userdevice", .string, .readWrite),
        F("bootable", .bool, .readWrite), F("mode", .string, .readWrite, default: .string("RW")),
        F("type", .string, .readWrite, default: .string("Disk")), F("unpluggable", .bool, .readWrite, default: .boolean(true)),
        F("storage_lock", .bool), F("empty", .bool), F("other_config", .map, .readWrite),
        F("currently_attached", .bool), F("status_code", .int), F("status_detail", .string),
        F("runtime_properties", .map), F("qos_algorithm_type", .string, .readWrite),
        F("qos_algorithm_params", .map, .readWrite),
    ])

    /// `VM`: records and VBDs only (no hypervisor here).
    public static let vm = ClassSpec("VM", [
        F("allowed_operations", .set(.string)), F("current_operations", .map),
        F("name_label", .string, .readWrite), F("name_description", .string, .readWrite),
        F("power_state", .string, default: .string("Halted")), F("user_version", .int, .readWrite, default: .string("1")),
        F("is_a_template", .bool, .readWrite), F("is_control_domain", .bool), F("resident_on", .ref("host")),
        .reverse("VBDs", "VBD", "VM"), .reverse("VIFs", "VIF", "VM"),
        F("memory_static_max", .int, .readWrite), F("VCPUs_max", .int, .readWrite, default: .string("1")),
        F("other_config", .map, .readWrite), F("domid", .int, default: .string("-1")),
        F("is_a_snapshot", .bool), F("snapshot_of", .ref("VM")), F("tags", .set(.string), .readWrite),
    ])

    /// `network`.
    public static let network = ClassSpec("network", [
        F("name_label", .string, .readWrite), F("name_description", .string, .readWrite),
        .reverse("VIFs", "VIF", "network"), .reverse("PIFs", "PIF", "network"),
        F("MTU", .int, .readWrite, default: .string("1500")), F("bridge", .string), F("managed", .bool, default: .boolean(true)),
        F("other_config", .map, .readWrite), F("tags", .set(.string), .readWrite),
        F("purpose", .set(.string), .readWrite),
    ])

    /// `PIF`.
    public static let pif = ClassSpec("PIF", [
        F("device", .string), F("network", .ref("network")), F("host", .ref("host")), F("MAC", .string),
        F("MTU", .int), F("VLAN", .int, default: .string("-1")), F("physical", .bool), F("currently_attached", .bool),
        F("ip_configuration_mode", .string, default: .string("None")), F("IP", .string), F("netmask", .string),
        F("gateway", .string), F("DNS", .string), F("management", .bool), F("other_config", .map, .readWrite),
        F("IPv6", .set(.string)),
    ])

    /// `VIF`.
    public static let vif = ClassSpec("VIF", [
        F("allowed_operations", .set(.string)), F("current_operations", .map),
        F("device", .string), F("network", .ref("network")), F("VM", .ref("VM")), F("MAC", .string),
        F("MTU", .int), F("currently_attached", .bool), F("other_config", .map, .readWrite),
    ])

    /// `task`.
    public static let task = ClassSpec("task", [
        F("name_label", .string), F("name_description", .string),
        F("allowed_operations", .set(.string)), F("current_operations", .map),
        F("created", .dateTime), F("finished", .dateTime), F("status", .string, default: .string("pending")),
        F("resident_on", .ref("host")), F("progress", .float), F("type", .string), F("result", .string),
        F("error_info", .set(.string)), F("other_config", .map, .readWrite), F("subtask_of", .ref("task")),
        .reverse("subtasks", "task", "subtask_of"), F("backtrace", .string),
    ])

    /// `message`.
    public static let message = ClassSpec("message", [
        F("name", .string), F("priority", .int), F("cls", .string), F("obj_uuid", .string),
        F("timestamp", .dateTime), F("body", .string),
    ])

    /// `secret`.
    public static let secret = ClassSpec("secret", [F("value", .string, .readWrite), F("other_config", .map, .readWrite)])

    /// `session`.
    public static let session = ClassSpec("session", [
        F("this_host", .ref("host")), F("this_user", .ref("user")), F("last_active", .dateTime),
        F("pool", .bool), F("other_config", .map, .readWrite), F("is_local_superuser", .bool),
        F("subject", .ref("subject")), F("validation_time", .dateTime), F("auth_user_sid", .string),
        F("auth_user_name", .string), F("rbac_permissions", .set(.string)), F("tasks", .set(.ref("task"))),
        F("parent", .ref("session")), F("originator", .string),
    ])

    /// Every class by name.
    public static let classes: [String: ClassSpec] = Dictionary(uniqueKeysWithValues: [
        pool, host, sm, sr, pbd, vdi, vbd, vm, network, pif, vif, task, message, secret, session,
    ].map { ($0.name, $0) })

    /// The class whose name matches `name` case-insensitively (xapi accepts `vdi` and `VDI`).
    public static func spec(_ name: String) -> ClassSpec? {
        classes[name] ?? classes.values.first { $0.name.lowercased() == name.lowercased() }
    }
}
