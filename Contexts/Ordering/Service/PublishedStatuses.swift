import Contracts
import Ordering

// The domain's statuses in the published language: an exhaustive switch each, so that a status added to the domain
// does not compile until the contract says how other contexts see it.

extension OrderStatus {
    init(_ status: Order.Status) {
        switch status {
        case .placed: self = .placed
        case .awaitingStock: self = .awaitingStock
        case .awaitingPayment: self = .awaitingPayment
        case .confirmed: self = .confirmed
        case .shipped: self = .shipped
        case .rejected: self = .rejected
        case .cancelled: self = .cancelled
        }
    }
}

extension SagaStatus {
    init(_ status: Fulfilment.Status) {
        switch status {
        case .running: self = .running
        case .compensating: self = .compensating
        case .parked: self = .parked
        case .completed: self = .completed
        case .rejected: self = .rejected
        case .cancelled: self = .cancelled
        }
    }
}
