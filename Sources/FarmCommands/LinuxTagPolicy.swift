import FarmCore
import Recipes

/// Host-specific `linux_*` wheels: accepted only when asked (`release --allow-linux-tag`, or a
/// recipe's `platform: linux`) and only for the local index; a release to an upload index
/// refuses them before anything is built, since PyPI rejects the tag (and other indexes would
/// serve wheels that break on other distributions).
enum LinuxTagPolicy {
    /// Why a release cannot go ahead.
    struct Refusal: Error, CustomStringConvertible {
        let description: String
    }

    /// `--allow-linux-tag`: every job accepts `linux_*`; a variant that requires a portable tag
    /// contradicts the flag.
    static func allowLinuxTags(recipe: Recipe, jobs: [BuildJob]) throws -> (Recipe, [BuildJob]) {
        if let strict = jobs.first(where: { $0.variant.platform?.libc != nil }) {
            throw Refusal(description: "--allow-linux-tag contradicts recipe '\(recipe.name)': variant '\(strict.variant.shortName)' requires \(strict.variant.platform!) wheels; drop the flag or the recipe's platform requirement")
        }
        var recipe = recipe
        for i in recipe.variants.indices { recipe.variants[i].platform = .linux }
        return (recipe, jobs.map { var j = $0; j.variant.platform = .linux; return j })
    }

    /// Throws when jobs that accept `linux_*` wheels would be uploaded to `url`.
    static func refuseUpload(of jobs: [BuildJob], to url: String, flag: Bool) throws {
        guard let job = jobs.first(where: { $0.variant.platform == .linux }) else { return }
        let why = flag ? "--allow-linux-tag" : "recipe '\(job.recipe)' (platform: linux)"
        throw Refusal(description: "\(why) accepts host-specific linux_* wheels, which only a local index takes; \(url) is an upload index (PyPI refuses linux_* tags): publish to the local index (no --repository-url), or require a portable platform (manylinux_X_Y) and build on hosts that meet it")
    }
}
