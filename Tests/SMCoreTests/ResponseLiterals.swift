// The literal documents of reference/smapi/responses.md (what the Python SM prints, minus
// print()'s extra newline), copied verbatim by a one-off script; tabs are written as \t.

/// Literal methodResponse documents from responses.md, each ending in one newline.
enum ResponseLiterals {
    /// §2.1 NIL.
    static let unit = """
    <?xml version='1.0'?>
    <methodResponse>
    <params>
    <param>
    <value><nil/></value></param>
    </params>
    </methodResponse>

    """

    /// §2.2 VDI_INFO.
    static let vdiInfo = """
    <?xml version='1.0'?>
    <methodResponse>
    <params>
    <param>
    <value><struct>
    <member>
    <name>location</name>
    <value><string>5e9d0b7c-1a2f-4c3e-9b8d-7f6a5e4d3c2b</string></value>
    </member>
    <member>
    <name>uuid</name>
    <value><string>5e9d0b7c-1a2f-4c3e-9b8d-7f6a5e4d3c2b</string></value>
    </member>
    </struct></value>
    </param>
    </params>
    </methodResponse>

    """

    /// §2.3 ATTACH, ext/nfs.
    static let attachFile = """
    <?xml version='1.0'?>
    <methodResponse>
    <params>
    <param>
    <value><struct>
    <member>
    <name>params_nbd</name>
    <value><string>nbd:unix:/run/blktap-control/nbd/7d3a1c52-6e0b-4f8e-b6a9-2c41d0e95f13/c2f4e8a1-93b7-4d25-8e6f-0a1b2c3d4e5f:exportname=c2f4e8a1-93b7-4d25-8e6f-0a1b2c3d4e5f</string></value>
    </member>
    <member>
    <name>o_direct</name>
    <value><boolean>0</boolean></value>
    </member>
    <member>
    <name>o_direct_reason</name>
    <value><string></string></value>
    </member>
    <member>
    <name>xenstore_data</name>
    <value><struct>
    <member>
    <name>vdi-uuid</name>
    <value><string>c2f4e8a1-93b7-4d25-8e6f-0a1b2c3d4e5f</string></value>
    </member>
    <member>
    <name>scsi/0x12/0x80</name>
    <value><string>AIAAEmMyZjRlOGExLTkzYjctNGQgIA==</string></value>
    </member>
    <member>
    <name>scsi/0x12/0x83</name>
    <value><string>AIMAMQIBAC1YRU5TUkMgIGMyZjRlOGExLTkzYjctNGQyNS04ZTZmLTBhMWIyYzNkNGU1ZiA=</string></value>
    </member>
    </struct></value>
    </member>
    </struct></value>
    </param>
    </params>
    </methodResponse>

    """

    /// §2.4 DRIVER_INFO, nfs.
    static let driverInfoNFS = """
    <?xml version='1.0'?>
    <methodResponse>
    <params>
    <param>
    <value><struct>
    <member>
    <name>name</name>
    <value><string>NFS VHD</string></value>
    </member>
    <member>
    <name>description</name>
    <value><string>SR plugin which stores disks as VHD files on a remote NFS filesystem</string></value>
    </member>
    <member>
    <name>vendor</name>
    <value><string>Citrix Systems Inc</string></value>
    </member>
    <member>
    <name>copyright</name>
    <value><string>(C) 2008 Citrix Systems Inc</string></value>
    </member>
    <member>
    <name>driver_version</name>
    <value><string>1.0</string></value>
    </member>
    <member>
    <name>required_api_version</name>
    <value><string>1.0</string></value>
    </member>
    <member>
    <name>capabilities</name>
    <value><array><data>
    <value><string>SR_PROBE</string></value>
    <value><string>SR_UPDATE</string></value>
    <value><string>SR_CACHING</string></value>
    <value><string>VDI_CREATE</string></value>
    <value><string>VDI_DELETE</string></value>
    <value><string>VDI_ATTACH</string></value>
    <value><string>VDI_DETACH</string></value>
    <value><string>VDI_UPDATE</string></value>
    <value><string>VDI_CLONE</string></value>
    <value><string>VDI_SNAPSHOT</string></value>
    <value><string>VDI_RESIZE</string></value>
    <value><string>VDI_GENERATE_CONFIG</string></value>
    <value><string>VDI_MIRROR</string></value>
    <value><string>VDI_RESET_ON_BOOT/2</string></value>
    <value><string>ATOMIC_PAUSE</string></value>
    <value><string>VDI_CONFIG_CBT</string></value>
    <value><string>VDI_ACTIVATE</string></value>
    <value><string>VDI_DEACTIVATE</string></value>
    <value><string>THIN_PROVISIONING</string></value>
    <value><string>VDI_READ_CACHING</string></value>
    </data></array></value>
    </member>
    <member>
    <name>configuration</name>
    <value><array><data>
    <value><struct>
    <member>
    <name>key</name>
    <value><string>server</string></value>
    </member>
    <member>
    <name>description</name>
    <value><string>hostname or IP address of NFS server (required)</string></value>
    </member>
    </struct></value>
    <value><struct>
    <member>
    <name>key</name>
    <value><string>serverpath</string></value>
    </member>
    <member>
    <name>description</name>
    <value><string>path on remote server (required)</string></value>
    </member>
    </struct></value>
    <value><struct>
    <member>
    <name>key</name>
    <value><string>nfsversion</string></value>
    </member>
    <member>
    <name>description</name>
    <value><string>NFS protocol version - 3, 4, 4.0, 4.1</string></value>
    </member>
    </struct></value>
    </data></array></value>
    </member>
    </struct></value>
    </param>
    </params>
    </methodResponse>

    """

    /// §2.5 sr_probe, nfs.
    static let probeNFS = """
    <?xml version='1.0'?>
    <methodResponse>
    <params>
    <param>
    <value><string>&lt;?xml version="1.0" ?&gt;
    &lt;SRlist&gt;
    \t&lt;SR&gt;
    \t\t&lt;UUID&gt;7d3a1c52-6e0b-4f8e-b6a9-2c41d0e95f13&lt;/UUID&gt;
    \t&lt;/SR&gt;
    &lt;/SRlist&gt;
    </string></value>
    </param>
    </params>
    </methodResponse>

    """

    /// §2.5 sr_probe, ext/lvmoiscsi.
    static let probeLVM = """
    <?xml version='1.0'?>
    <methodResponse>
    <params>
    <param>
    <value><string>&lt;?xml version="1.0" ?&gt;
    &lt;SRlist&gt;
    \t&lt;SR&gt;
    \t\t&lt;UUID&gt;7d3a1c52-6e0b-4f8e-b6a9-2c41d0e95f13&lt;/UUID&gt;
    \t\t&lt;Devlist&gt;/dev/disk/by-id/scsi-36001405c3a4b5d6e7f8091a2b3c4d5e6&lt;/Devlist&gt;
    \t\t&lt;size&gt;107369988096&lt;/size&gt;
    \t&lt;/SR&gt;
    &lt;/SRlist&gt;
    </string></value>
    </param>
    </params>
    </methodResponse>

    """

    /// §2.5 vdi_generate_config, nfs.
    static let generateConfigNFS = """
    <?xml version='1.0'?>
    <methodResponse>
    <params>
    <param>
    <value><string>&lt;?xml version='1.0'?&gt;
    &lt;methodCall&gt;
    &lt;methodName&gt;vdi_attach_from_config&lt;/methodName&gt;
    &lt;params&gt;
    &lt;param&gt;
    &lt;value&gt;&lt;struct&gt;
    &lt;member&gt;
    &lt;name&gt;device_config&lt;/name&gt;
    &lt;value&gt;&lt;struct&gt;
    &lt;member&gt;
    &lt;name&gt;SRmaster&lt;/name&gt;
    &lt;value&gt;&lt;string&gt;true&lt;/string&gt;&lt;/value&gt;
    &lt;/member&gt;
    &lt;member&gt;
    &lt;name&gt;server&lt;/name&gt;
    &lt;value&gt;&lt;string&gt;192.0.2.10&lt;/string&gt;&lt;/value&gt;
    &lt;/member&gt;
    &lt;member&gt;
    &lt;name&gt;serverpath&lt;/name&gt;
    &lt;value&gt;&lt;string&gt;/export/xenserver&lt;/string&gt;&lt;/value&gt;
    &lt;/member&gt;
    &lt;/struct&gt;&lt;/value&gt;
    &lt;/member&gt;
    &lt;member&gt;
    &lt;name&gt;sr_uuid&lt;/name&gt;
    &lt;value&gt;&lt;string&gt;7d3a1c52-6e0b-4f8e-b6a9-2c41d0e95f13&lt;/string&gt;&lt;/value&gt;
    &lt;/member&gt;
    &lt;member&gt;
    &lt;name&gt;vdi_uuid&lt;/name&gt;
    &lt;value&gt;&lt;string&gt;c2f4e8a1-93b7-4d25-8e6f-0a1b2c3d4e5f&lt;/string&gt;&lt;/value&gt;
    &lt;/member&gt;
    &lt;member&gt;
    &lt;name&gt;sr_sm_config&lt;/name&gt;
    &lt;value&gt;&lt;struct&gt;
    &lt;/struct&gt;&lt;/value&gt;
    &lt;/member&gt;
    &lt;member&gt;
    &lt;name&gt;sr_other_config&lt;/name&gt;
    &lt;value&gt;&lt;struct&gt;
    &lt;/struct&gt;&lt;/value&gt;
    &lt;/member&gt;
    &lt;member&gt;
    &lt;name&gt;command&lt;/name&gt;
    &lt;value&gt;&lt;string&gt;vdi_attach_from_config&lt;/string&gt;&lt;/value&gt;
    &lt;/member&gt;
    &lt;/struct&gt;&lt;/value&gt;
    &lt;/param&gt;
    &lt;/params&gt;
    &lt;/methodCall&gt;
    </string></value>
    </param>
    </params>
    </methodResponse>

    """

    /// §2.5 vdi_list_changed_blocks.
    static let listChangedBlocks = """
    <?xml version='1.0'?>
    <methodResponse>
    <params>
    <param>
    <value><string>wAAAAAAAAACAAAAAAAAAAA==</string></value>
    </param>
    </params>
    </methodResponse>

    """

    /// §2.6 vdi_attach_from_config, nfs.
    static let attachFromConfigNFS = """
    <?xml version='1.0'?>
    <methodResponse>
    <params>
    <param>
    <value><struct>
    <member>
    <name>params_nbd</name>
    <value><string>nbd:unix:/run/blktap-control/nbd/7d3a1c52-6e0b-4f8e-b6a9-2c41d0e95f13/c2f4e8a1-93b7-4d25-8e6f-0a1b2c3d4e5f:exportname=c2f4e8a1-93b7-4d25-8e6f-0a1b2c3d4e5f</string></value>
    </member>
    <member>
    <name>o_direct</name>
    <value><boolean>1</boolean></value>
    </member>
    <member>
    <name>o_direct_reason</name>
    <value><string>LICENSE_RESTRICTION</string></value>
    </member>
    <member>
    <name>xenstore_data</name>
    <value><struct>
    <member>
    <name>vdi-uuid</name>
    <value><string>c2f4e8a1-93b7-4d25-8e6f-0a1b2c3d4e5f</string></value>
    </member>
    <member>
    <name>scsi/0x12/0x80</name>
    <value><string>AIAAEmMyZjRlOGExLTkzYjctNGQgIA==</string></value>
    </member>
    <member>
    <name>scsi/0x12/0x83</name>
    <value><string>AIMAMQIBAC1YRU5TUkMgIGMyZjRlOGExLTkzYjctNGQyNS04ZTZmLTBhMWIyYzNkNGU1ZiA=</string></value>
    </member>
    <member>
    <name>storage-type</name>
    <value><string>nfs</string></value>
    </member>
    </struct></value>
    </member>
    </struct></value>
    </param>
    </params>
    </methodResponse>

    """

    /// §2.6 vdi_attach_from_config, lvmoiscsi.
    static let attachFromConfigLVM = """
    <?xml version='1.0'?>
    <methodResponse>
    <params>
    <param>
    <value><struct>
    <member>
    <name>params</name>
    <value><string>/dev/VG_XenStorage-7d3a1c52-6e0b-4f8e-b6a9-2c41d0e95f13/LV-c2f4e8a1-93b7-4d25-8e6f-0a1b2c3d4e5f</string></value>
    </member>
    <member>
    <name>xenstore_data</name>
    <value><struct>
    <member>
    <name>vdi-uuid</name>
    <value><string>c2f4e8a1-93b7-4d25-8e6f-0a1b2c3d4e5f</string></value>
    </member>
    <member>
    <name>scsi/0x12/0x80</name>
    <value><string>AIAAEmMyZjRlOGExLTkzYjctNGQgIA==</string></value>
    </member>
    <member>
    <name>scsi/0x12/0x83</name>
    <value><string>AIMAMQIBAC1YRU5TUkMgIGMyZjRlOGExLTkzYjctNGQyNS04ZTZmLTBhMWIyYzNkNGU1ZiA=</string></value>
    </member>
    <member>
    <name>storage-type</name>
    <value><string>lvm</string></value>
    </member>
    <member>
    <name>vdi-type</name>
    <value><string>aio</string></value>
    </member>
    </struct></value>
    </member>
    </struct></value>
    </param>
    </params>
    </methodResponse>

    """

    /// §3 fault 46.
    static let faultVDIUnavailable = """
    <?xml version='1.0'?>
    <methodResponse>
    <fault>
    <value><struct>
    <member>
    <name>faultCode</name>
    <value><int>46</int></value>
    </member>
    <member>
    <name>faultString</name>
    <value><string>The VDI is not available [opterr=VDI c2f4e8a1-93b7-4d25-8e6f-0a1b2c3d4e5f not found]</string></value>
    </member>
    </struct></value>
    </fault>
    </methodResponse>

    """

    /// §3 fault 1200.
    static let faultGeneric = """
    <?xml version='1.0'?>
    <methodResponse>
    <fault>
    <value><struct>
    <member>
    <name>faultCode</name>
    <value><int>1200</int></value>
    </member>
    <member>
    <name>faultString</name>
    <value><string>'NoneType' object has no attribute 'xenapi'</string></value>
    </member>
    </struct></value>
    </fault>
    </methodResponse>

    """
}
