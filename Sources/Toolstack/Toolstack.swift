// The toolstack: pool, hosts, VMs, networks, tasks, storage migration, over SMAPIv1. Built by
// its own issue; nothing here yet.
