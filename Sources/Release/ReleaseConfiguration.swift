import Agents
import FarmCore
import Foundation
import Inventory
import Recipes

/// Everything a release needs to know, gathered from the command line and files.
public struct ReleaseConfiguration: Sendable {
    public var recipe: Recipe
    /// The jobs the selection expands to (with the `--version-suffix`, if any).
    public var jobs: [BuildJob]
    public var inventory: Inventory
    /// The inventory file, watched during the build for hosts joining and leaving (nil: not watched).
    public var inventoryPath: String?
    public var distDir: URL
    public var builder: BuildRequest.Builder = .native
    /// `--max-jobs`: overrides every host's `max_jobs`.
    public var maxJobs: Int?
    public var skipBuild = false
    public var skipGitHub = false
    /// `--skip-tests`: the recipe's test is not run (the release says so).
    public var skipTests = false
    public var dryRun = false
    /// `--update-readme`: the description file to put into the existing wheels (nothing is built or uploaded).
    public var updateReadme: URL?
    /// Where wheels are published.
    public var publishTarget: PublishTarget = .localIndex
    /// GitHub release settings; nil when no repository is configured.
    public var gitHub: GitHubSettings?
    /// The command line with credentials removed, for the journal.
    public var arguments: [String] = []
    /// Lines pre-flight prints about how the selection was read (e.g. one abi3 build serving
    /// several Pythons).
    public var notes: [String] = []
    /// Build attempts per job, including rebuilds after a failed verification.
    public var maxAttempts = 2
    /// How long one build attempt may run and stay silent (the build watchdog).
    public var buildLimits = BuildLimits()

    public init(recipe: Recipe, jobs: [BuildJob], inventory: Inventory, inventoryPath: String?, distDir: URL) {
        self.recipe = recipe; self.jobs = jobs; self.inventory = inventory
        self.inventoryPath = inventoryPath; self.distDir = distDir
    }

    /// Where verified wheels go.
    public enum PublishTarget: Sendable, Equatable {
        /// A static PEP 503/691 index in `<dist>/index` (the embedded default).
        case localIndex
        /// An index speaking the upload API (PyPI, pypiserver, devpi, …).
        case uploadAPI(uploadURL: String, simpleURL: String?)
    }

    /// GitHub Releases settings.
    public struct GitHubSettings: Sendable, Equatable {
        public var repository: String
        public var apiBaseURL: String
        public var tagTemplate: String
        public init(repository: String, apiBaseURL: String, tagTemplate: String) {
            self.repository = repository; self.apiBaseURL = apiBaseURL; self.tagTemplate = tagTemplate
        }
    }

    /// The job the farm builds: the suffix is applied afterwards by rewriting the verified wheel,
    /// so a burnt filename is fixed without a rebuild.
    static func buildJob(_ job: BuildJob) -> BuildJob {
        var j = job
        j.suffix = nil
        return j
    }
}
