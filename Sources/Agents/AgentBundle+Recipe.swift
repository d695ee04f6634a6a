import FarmCore
import Foundation
import Recipes

extension AgentBundle {
    /// This bundle with the recipe's own directory (its build steps and patches) added under
    /// `recipe/<name>/`, so a project's step travels to the hosts with the agents and nothing in
    /// wheelfarm's own tree needs editing. A recipe without a directory adds nothing.
    public func including(recipe: Recipe) throws(AgentError) -> AgentBundle {
        guard let directory = recipe.directory else { return self }
        let root = URL(fileURLWithPath: directory).standardizedFileURL.resolvingSymlinksInPath()
        let fm = FileManager.default
        guard let walker = fm.enumerator(at: root, includingPropertiesForKeys: [.isRegularFileKey], options: [.skipsHiddenFiles]) else {
            throw .bundleUnreadable(path: directory, detail: "the recipe's directory cannot be read")
        }
        var added = files
        let prefix = "\(Recipe.bundleFolder)/\(recipe.name)/"
        for case let url as URL in walker {
            guard (try? url.resourceValues(forKeys: [.isRegularFileKey]).isRegularFile) == true else { continue }
            let path = url.resolvingSymlinksInPath().path
            guard path.hasPrefix(root.path + "/") else { continue }
            guard let data = fm.contents(atPath: path) else { throw .bundleUnreadable(path: path, detail: "cannot read the file") }
            added.removeAll { $0.path == prefix + String(path.dropFirst(root.path.count + 1)) }
            added.append(File(path: prefix + String(path.dropFirst(root.path.count + 1)), contents: data,
                              executable: fm.isExecutableFile(atPath: path)))
        }
        return AgentBundle(files: added)
    }
}
