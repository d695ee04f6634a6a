/// The outcome of an async throwing call as a `Result` (the async counterpart of
/// `Result(catching:)`).
///
/// Also a guard against a miscompile of Swift 6.3.1 with optimisation (`-O`): in an async closure,
/// `do { return (name, try await f()) } catch { … }` — a `try await` inside a tuple literal that
/// is returned from a `do` block — loses the tuple's other elements (an empty or freed string;
/// the release binary's pre-flight probe results vanished, or it crashed in the task group's
/// result copy). Debug builds are not affected. Build the `Result` with this first, and the tuple
/// from it: `let outcome = await Result { try await probe() }; return (name, outcome)`.
extension Result where Failure == any Error {
    public init(catching body: () async throws -> Success) async {
        do { self = .success(try await body()) } catch { self = .failure(error) }
    }
}
