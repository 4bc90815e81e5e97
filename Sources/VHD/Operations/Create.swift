/// Creating new standalone images, as `vhd-util create` does.
public enum Create {
    /// Rounds a requested size up to 2 MiB and enforces XenServer's limits.
    public static func validatedSize(_ requested: UInt64) throws -> UInt64 {
        guard requested > 0 else { throw VHDError.invalidArgument("size must be positive") }
        let size = roundUp(requested, to: 2 << 20)
        guard size <= Footer.maxVirtualSize else {
            throw VHDError.invalidArgument("size \(requested) exceeds the 2040 GiB VHD limit")
        }
        return size
    }

    /// Rounds a fast-resize capacity (the virtual size a BAT is made for, `vhd-util create -S`)
    /// up to 2 MiB; at most 2 TiB, the Python SM's `MSIZE` for LVHD (past the 2040 GiB disk limit).
    public static func validatedCapacity(_ requested: UInt64) throws -> UInt64 {
        let capacity = roundUp(requested, to: 2 << 20)
        guard capacity <= maxCapacity else {
            throw VHDError.invalidArgument("metadata capacity \(requested) exceeds 2 TiB")
        }
        return capacity
    }

    /// The largest fast-resize capacity: 2 TiB.
    public static let maxCapacity: UInt64 = 2 << 40

    /// Creates a dynamic VHD of `size` bytes (rounded up to 2 MiB) whose BAT can later grow
    /// quickly up to `fastResizeLimit` bytes.
    @discardableResult
    public static func dynamic(at path: String, size: UInt64, fastResizeLimit: UInt64 = 0,
                               provider: any StoreProvider, uuid: VHDUUID = .random()) throws -> VHDUUID {
        let size = try validatedSize(size)
        let capacity = fastResizeLimit > 0 ? try validatedCapacity(fastResizeLimit) : 0
        let layout = ImageLayout(type: .dynamic, size: size, capacity: capacity, uuid: uuid)
        let bytes = layout.encoded()
        let store = try provider.create(path, size: UInt64(bytes.count))
        try store.write(bytes, at: 0)
        try ImageLayout.placeEndFooter(bytes, in: store)
        return uuid
    }

    /// Creates a fixed VHD: `size` bytes of zeros (a sparse file) and a footer.
    @discardableResult
    public static func fixed(at path: String, size: UInt64, provider: any StoreProvider,
                             uuid: VHDUUID = .random()) throws -> VHDUUID {
        let size = try validatedSize(size)
        let store = try provider.create(path, size: size + 512)
        try store.resize(to: size)
        try store.write(Footer(type: .fixed, size: size, uuid: uuid).encoded(), at: size)
        return uuid
    }
}
