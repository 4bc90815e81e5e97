import Foundation

/// XenAPI date-times: UTC in the ISO 8601 basic form xapi writes (`20261206T20:05:00Z`).
public enum XenAPITime {
    /// The epoch, xapi's "never".
    public static let epoch = "19700101T00:00:00Z"

    /// `date` in xapi's form.
    public static func string(_ date: Date = Date()) -> String {
        let c = Calendar(identifier: .gregorian).dateComponents(in: TimeZone(identifier: "UTC")!, from: date)
        return String(format: "%04d%02d%02dT%02d:%02d:%02dZ", c.year!, c.month!, c.day!, c.hour!, c.minute!, c.second!)
    }
}
