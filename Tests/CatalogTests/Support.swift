import Catalog
import EventSourcing
import SharedKernel

func sku(_ text: String) -> SKU { try! SKU(text) }
func eur(_ cents: Int64) -> Money { try! Money(minorUnits: cents, currency: .eur) }

