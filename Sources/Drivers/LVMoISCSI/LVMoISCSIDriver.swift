// The LVM-over-iSCSI SR driver (libiscsi, LVM2 metadata, VHD inside LVs). The LVHD volume
// container (`LVHDContainer`) is here; the driver itself comes with the iSCSI store.
