import SharedKernel

/// The order fulfilment saga as a pure process manager: what starts an instance, which step comes next,
/// how a step's result changes the instance, and which command the order gets on the way. No I/O: the
/// Ordering service performs the steps (HTTP commands to Catalog and Billing) and stores the state.
///
/// Forward: reserve stock → authorise payment (the order is confirmed) → commit the reservation → capture
/// the payment. An instance that ends early, because a step was refused (no stock, card declined), kept
/// failing before confirmation, or the customer cancelled, compensates whatever it did or may have done:
/// it releases (or, once committed, returns) the stock and voids (or, once captured, refunds) the payment.
///
/// The next step is derived from what is done, not stored: after a crash the instance resumes by asking
/// ``next(_:)`` again, and every step is idempotent on the other side, so repeating one never acts twice.
public enum Fulfilment {
    public enum Step: String, Codable, Sendable, CaseIterable, CustomStringConvertible {
        case reserveStock = "reserve-stock"
        case authorisePayment = "authorise-payment"
        case commitStock = "commit-stock"
        case capturePayment = "capture-payment"
        /// Releases the order's reservation, or returns its stock if the reservation was committed.
        case releaseStock = "release-stock"
        /// Voids the authorisation, or refunds what was captured.
        case cancelPayment = "cancel-payment"

        public var description: String { rawValue }
        public var isCompensation: Bool { self == .releaseStock || self == .cancelPayment }
    }

    public enum Status: String, Codable, Sendable, CaseIterable, CustomStringConvertible {
        /// Going forward.
        case running
        /// Undoing what it did, after a refusal, a failure or a cancellation.
        case compensating
        /// A step kept failing: waits for an operator (`shop-admin sagas retry`).
        case parked
        /// Confirmed, stock committed, payment captured.
        case completed
        /// Rejected and compensated.
        case rejected
        /// Cancelled by the customer and compensated.
        case cancelled

        public var description: String { rawValue }
        public var isFinal: Bool { self == .completed || self == .rejected || self == .cancelled }
    }

    public struct Line: Codable, Sendable, Equatable {
        public let sku: String, quantity: Int
        public init(sku: String, quantity: Int) { self.sku = sku; self.quantity = quantity }
    }

    /// Why an instance stopped going forward.
    public enum Ending: Codable, Sendable, Equatable {
        case rejected(reason: String)
        case cancelled(reason: String)
    }

    public struct Parked: Codable, Sendable, Equatable {
        public let step: Step, reason: String
    }

    public struct State: Codable, Sendable, Equatable {
        public let order: String
        public let customer: String
        public let lines: [Line]
        public let total: Money
        /// The card to authorise. A real system would hold the provider's token for it, never the number.
        public let card: String
        /// Steps that succeeded.
        public var done: Set<Step> = []
        /// Steps attempted without a definite answer (a timeout, an unavailable service): they may have
        /// acted, so compensation undoes them too (releasing or voiding what does not exist is harmless).
        public var unsure: Set<Step> = []
        public var confirmed = false
        public var ending: Ending?
        /// Failed attempts of the step now due.
        public var failures = 0
        public var parked: Parked?

        public var status: Status {
            if parked != nil { return .parked }
            if Fulfilment.next(self) != nil { return ending == nil ? .running : .compensating }
            switch ending {
            case nil: return .completed
            case .rejected: return .rejected
            case .cancelled: return .cancelled
            }
        }

        /// Why it parked, or why it ended early.
        public var reason: String? {
            switch (parked, ending) {
            case (let parked?, _): parked.reason
            case (nil, .rejected(let reason)?), (nil, .cancelled(let reason)?): reason
            case (nil, nil): nil
            }
        }

        /// What the instance touched, definitely or maybe.
        func touched(_ steps: Step...) -> Bool { steps.contains { done.contains($0) || unsure.contains($0) } }
    }

    /// How often a failing step is tried again, and how long to wait between attempts.
    public struct RetryPolicy: Sendable, Equatable {
        /// Attempts of one step before giving up on it (the first included).
        public var attempts: Int
        public var firstDelay: Duration
        public var maximumDelay: Duration

        public init(attempts: Int = 6, firstDelay: Duration = .milliseconds(200), maximumDelay: Duration = .seconds(30)) {
            self.attempts = max(1, attempts)
            self.firstDelay = firstDelay
            self.maximumDelay = maximumDelay
        }

        /// Exponential backoff with jitter: `firstDelay × 2^(failures-1)`, capped at `maximumDelay`, of which
        /// a random half (`random` is in 0..<1), so instances that failed together do not retry together.
        public func delay(afterFailures failures: Int, random: Double) -> Duration {
            let ceiling = min(firstDelay * (1 << min(max(failures - 1, 0), 20)), maximumDelay)
            return ceiling / 2 + (ceiling / 2) * max(0, min(random, 1))
        }
    }

    /// What performing a step answered.
    public enum Result: Sendable, Equatable {
        case succeeded
        /// The other context said no for a business reason (no stock, card declined): retrying will not help.
        case refused(String)
        /// No definite answer (a timeout, a service unavailable): it may be retried.
        case failed(String)
        /// An answer the saga does not expect: retrying will not help, an operator must look.
        case broken(String)
    }

    /// A result applied to an instance.
    public struct Transition: Sendable, Equatable {
        public var state: State
        /// The command the order gets in the same transaction, if any.
        public var orderCommand: Order.Command?
        /// When to try again; `nil`: go on at once (or stop, if nothing is due).
        public var retryAfter: Duration?

        public init(state: State, orderCommand: Order.Command? = nil, retryAfter: Duration? = nil) {
            self.state = state
            self.orderCommand = orderCommand
            self.retryAfter = retryAfter
        }
    }

    // MARK: The process

    /// An order was placed: the instance that fulfils it, and the order's first step.
    public static func start(_ placed: Order.OrderPlaced, card: String) -> Transition {
        let state = State(order: placed.order, customer: placed.customer,
                          lines: placed.lines.map { Line(sku: $0.sku, quantity: $0.quantity) }, total: placed.total, card: card)
        return Transition(state: state, orderCommand: .awaitStock(order: placed.order))
    }

    /// The step due now; `nil` when the instance is finished (or parked).
    public static func next(_ state: State) -> Step? {
        if state.parked != nil { return nil }
        guard state.ending != nil else {
            return [.reserveStock, .authorisePayment, .commitStock, .capturePayment].first { !state.done.contains($0) }
        }
        if state.touched(.reserveStock, .commitStock), !state.done.contains(.releaseStock) { return .releaseStock }
        if state.touched(.authorisePayment, .capturePayment), !state.done.contains(.cancelPayment) { return .cancelPayment }
        return nil
    }

    /// Applies the result of performing `step`.
    public static func record(_ result: Result, of step: Step, in state: State, policy: RetryPolicy,
                              random: Double = Double.random(in: 0..<1)) -> Transition {
        var state = state
        if state.ending != nil, !step.isCompensation {
            // A forward step's answer that arrives after the instance stopped going forward (the customer
            // cancelled while it was under way): only what it did matters now, for compensation.
            switch result {
            case .succeeded: state.done.insert(step)
            case .failed, .broken: state.unsure.insert(step)
            case .refused: break
            }
            state.failures = 0
            return Transition(state: state)
        }
        switch result {
        case .succeeded:
            state.done.insert(step)
            state.unsure.remove(step)
            state.failures = 0
            switch step {
            case .reserveStock: return Transition(state: state, orderCommand: .stockReserved(order: state.order))
            case .authorisePayment:
                state.confirmed = true
                return Transition(state: state, orderCommand: .confirm(order: state.order))
            default: return Transition(state: state)
            }

        case .refused(let reason) where step == .reserveStock || step == .authorisePayment:
            state.unsure.remove(step)
            state.failures = 0
            return end(state, rejecting: reason)

        case .refused(let reason), .broken(let reason):
            state.unsure.insert(step)
            state.parked = Parked(step: step, reason: reason)
            return Transition(state: state)

        case .failed(let reason):
            state.unsure.insert(step)
            state.failures += 1
            if state.failures < policy.attempts {
                return Transition(state: state, retryAfter: policy.delay(afterFailures: state.failures, random: random))
            }
            state.failures = 0
            // Before confirmation the order can still be turned down; after it, or while compensating, an
            // operator must look.
            if !step.isCompensation, !state.confirmed {
                return end(state, rejecting: "\(reasonPrefix(step)): \(reason) (\(policy.attempts) attempts)")
            }
            state.parked = Parked(step: step, reason: "\(reason) (\(policy.attempts) attempts)")
            return Transition(state: state)
        }
    }

    /// Whether `result` of `step` may be recorded together with the next step's result rather than at once: a forward
    /// step's success that does not confirm the order, after which the instance goes on forward at once (stock
    /// reserved: authorise; stock committed: capture). Every step is idempotent on the other side, so if the next is
    /// never recorded (a crash), this one is performed again and answered as before.
    public static func leadsOn(_ result: Result, of step: Step, in state: State) -> Bool {
        guard case .succeeded = result, state.ending == nil, state.parked == nil, !step.isCompensation else { return false }
        let after = record(result, of: step, in: state, policy: RetryPolicy()).state  // a success waits for no retry
        guard after.confirmed == state.confirmed, let next = next(after) else { return false }
        return !next.isCompensation
    }

    /// The customer cancelled the order (the order's own rules allowed it): undo what was done.
    public static func cancel(_ state: State, reason: String) -> State {
        var state = state
        guard !state.status.isFinal || state.status == .completed else { return state }
        state.ending = .cancelled(reason: reason)
        state.parked = nil
        state.failures = 0
        return state
    }

    /// An operator re-drives a parked instance: its step is tried again with a fresh retry budget.
    public static func retry(_ state: State) -> State {
        var state = state
        state.parked = nil
        state.failures = 0
        return state
    }

    private static func end(_ state: State, rejecting reason: String) -> Transition {
        var state = state
        guard state.ending == nil else { return Transition(state: state) }
        let reason = String(reason.prefix(Order.maximumReasonLength))
        state.ending = .rejected(reason: reason)
        return Transition(state: state, orderCommand: .reject(order: state.order, reason: reason))
    }

    private static func reasonPrefix(_ step: Step) -> String {
        switch step {
        case .reserveStock: "stock could not be reserved"
        case .authorisePayment: "payment could not be authorised"
        default: "\(step) failed"
        }
    }
}
