// The NFS SR driver (NFSv3 through libnfs). Built by its own issue; nothing here yet.
