/// How a call reached toolstackd, which decides how its login is checked.
public enum Transport: Sendable, Hashable {
    /// The local unix socket, reachable only by root: trusted for root as xapi trusts it.
    case local
    /// TCP: the password is always checked.
    case network
}
