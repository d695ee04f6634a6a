import Inventory

// Foundation on Linux has a `Host` class too; files that import Foundation name the inventory's
// host through this alias (this file must not import Foundation).
typealias InventoryHost = Host
