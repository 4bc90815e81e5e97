// The EXT SR driver (local ext4 filesystem or an existing directory). Built by the storage
// manager core issue; nothing here yet.
