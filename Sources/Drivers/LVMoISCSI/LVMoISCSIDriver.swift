// The LVM-over-iSCSI SR driver (libiscsi, LVM2 metadata, VHD inside LVs). Built by its own
// issue; nothing here yet.
