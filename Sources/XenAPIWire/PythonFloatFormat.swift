/// Formats doubles the way Python's `repr(float)` does (shortest round-trip digits, fixed
/// notation for decimal exponents -4 through 15, otherwise `d.ddde±XX`), as `xmlrpc.client` writes them.
public enum PythonFloatFormat {
    /// Python's `repr` of `value`.
    public static func repr(_ value: Double) -> String {
        if value.isNaN { return "nan" }
        if value.isInfinite { return value < 0 ? "-inf" : "inf" }
        let sign = value.sign == .minus ? "-" : ""
        if value == 0 { return sign + "0.0" }
        // Swift's description is also the shortest round-trip form; take its digits and exponent.
        let text = String(describing: value.magnitude)
        let parts = text.split(separator: "e", maxSplits: 1)
        let exponent = parts.count == 2 ? Int(parts[1]) ?? 0 : 0
        let mantissa = parts[0].split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        let integral = mantissa[0]
        let fraction = mantissa.count == 2 ? mantissa[1] : ""
        var digits = Array(integral + fraction)
        var point = integral.count + exponent
        while digits.first == "0" {
            digits.removeFirst()
            point -= 1
        }
        while digits.last == "0" { digits.removeLast() }
        let all = String(digits)
        if point <= -4 || point > 16 {
            let head = String(digits[0])
            let tail = String(digits.dropFirst())
            let power = point - 1
            let magnitude = String(abs(power))
            return sign + head + (tail.isEmpty ? "" : "." + tail) + "e" + (power < 0 ? "-" : "+")
                + (magnitude.count < 2 ? "0" + magnitude : magnitude)
        }
        if point <= 0 { return sign + "0." + String(repeating: "0", count: -point) + all }
        if point >= digits.count { return sign + all + String(repeating: "0", count: point - digits.count) + ".0" }
        return sign + String(digits[..<point]) + "." + String(digits[point...])
    }
}
