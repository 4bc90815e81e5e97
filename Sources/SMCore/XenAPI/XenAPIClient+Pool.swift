/// The `pool.*` calls a storage driver makes: which host is the pool master.
extension XenAPIClient {
    /// `pool.get_all`: the pool (one per xapi).
    public func poolGetAll() throws(XenAPIError) -> [String] {
        try XenAPIValue.refs(callWithSession("pool.get_all", []), "pool.get_all")
    }

    /// `pool.get_master`: the master host's reference.
    public func poolGetMaster(_ pool: String) throws(XenAPIError) -> String {
        try XenAPIValue.string(callWithSession("pool.get_master", [.string(pool)]), "pool.get_master")
    }
}
