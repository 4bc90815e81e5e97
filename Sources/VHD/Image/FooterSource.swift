/// Which copy of the footer an image was opened with.
public enum FooterSource: String, Sendable {
    /// The copy at the end of the file (or device).
    case primary
    /// The 511-byte short footer of pre-2004 images.
    case short
    /// The backup copy at offset 0 (the primary was missing or damaged, as after a crash).
    case backup
}
