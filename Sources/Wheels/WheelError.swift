#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Why a wheel could not be read, verified or rewritten at all.
///
/// Problems *inside* a wheel are not errors: they are failed checks in a ``WheelReport``. This type
/// covers what stops the work itself (unreadable files, refused rewrites, bad options).
public enum WheelError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A system call on a file failed.
    case io(path: String, operation: String, errno: Int32)
    /// The path is a directory, device or other non-regular file.
    case notARegularFile(path: String)
    /// The zip structure is broken in a way that stops reading (check id and message).
    case malformed(check: String, message: String)
    /// `--version-suffix` is not one of the allowed forms.
    case invalidSuffix(String)
    /// The rewritten version would not compare greater than the original.
    case versionNotGreater(original: String, rewritten: String)
    /// A wheel failed verification before or after a rewrite.
    case verificationFailed(path: String, failures: [String])
    /// An option or input is unusable.
    case invalidInput(String)

    public var description: String {
        switch self {
        case let .io(path, operation, code):
            return "cannot \(operation) '\(path)': \(String(cString: strerror(code)))"
        case let .notARegularFile(path):
            return "'\(path)' is not a regular file: expected a wheel file"
        case let .malformed(check, message):
            return "\(message) [\(check)]"
        case let .invalidSuffix(text):
            return "invalid version suffix '\(text)': expected '.postN' or '.devN' with N a whole number, e.g. '.post1' or '.dev2'"
        case let .versionNotGreater(original, rewritten):
            return "version '\(rewritten)' does not compare greater than '\(original)': choose a higher suffix number"
        case let .verificationFailed(path, failures):
            return "'\(path)' failed verification (\(failures.joined(separator: "; "))): run 'wheelfarm verify' for the full report"
        case let .invalidInput(message):
            return message
        }
    }
}
