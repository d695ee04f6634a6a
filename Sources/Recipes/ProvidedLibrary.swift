#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A shared library a wheel links against but does not carry, because a runtime dependency
/// installs it: vLLM's `_C.abi3.so` needs `libtorch.so`, `libtorch_cpu.so` and `libc10.so`, which
/// come with torch (the recipe's `provided_libraries`).
///
/// The platform audit lets such a library pass (and says so); `auditwheel repair` is told not to
/// vendor it (`--exclude`).
public struct ProvidedLibrary: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The library's file name as `DT_NEEDED` names it, or a pattern (`libtorch*.so`; `*`, `?`, `[…]`).
    public var pattern: String
    /// The distribution that installs it (`torch`); the wheel must require it (`Requires-Dist`).
    public var provider: String

    public init(pattern: String, provider: String) {
        self.pattern = pattern; self.provider = provider
    }

    /// Whether `library` (a `DT_NEEDED` name) is this one.
    public func matches(_ library: String) -> Bool { fnmatch(pattern, library, 0) == 0 }

    /// `libtorch.so (torch)`.
    public var description: String { "\(pattern) (\(provider))" }
}
