import Inventory

// Foundation on Linux has a `Host` class too; test files that import Foundation use this alias.
typealias InventoryHost = Host
