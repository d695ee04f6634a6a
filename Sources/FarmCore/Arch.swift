/// A CPU architecture a wheel can be built for.
///
/// Inventories and probes may use the Debian names (`amd64`, `arm64`) or the kernel names
/// (`x86_64`, `aarch64`); both parse to the same value.
public enum Arch: String, Sendable, Hashable, Codable, CaseIterable, Comparable {
    case amd64
    case arm64

    /// Parses an architecture name, accepting the aliases `x86_64`, `x86-64` and `aarch64`.
    public init?(parsing text: String) {
        switch text.lowercased() {
        case "amd64", "x86_64", "x86-64": self = .amd64
        case "arm64", "aarch64": self = .arm64
        default: return nil
        }
    }

    /// The names accepted by ``init(parsing:)``, for error messages.
    public static let acceptedNames = ["amd64", "x86_64", "arm64", "aarch64"]

    /// The name `uname -m` prints on Linux.
    public var kernelName: String { self == .amd64 ? "x86_64" : "aarch64" }

    /// The Docker/OCI platform name (`linux/amd64`).
    public var platformName: String { "linux/\(rawValue)" }

    /// The suffix of manylinux/linux platform tags in wheel filenames (`x86_64`, `aarch64`).
    public var wheelTagSuffix: String { kernelName }

    public static func < (lhs: Arch, rhs: Arch) -> Bool { lhs.rawValue < rhs.rawValue }
}
