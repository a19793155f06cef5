import Ordering
import SharedKernel
import Testing

@Suite("Fulfilment process manager")
struct FulfilmentTests {
    let policy = Fulfilment.RetryPolicy(attempts: 3, firstDelay: .milliseconds(100), maximumDelay: .seconds(1))

    func started() throws -> Fulfilment.State {
        let total = try Money(minorUnits: 2500, currency: .eur)
        let placed = Order.OrderPlaced(order: "o-1", customer: "kim", lines: [.init(sku: "MUG-001", name: "Mug", unitPrice: total, quantity: 1)],
                                       total: total)
        let start = Fulfilment.start(placed, card: "4242424242424242")
        #expect(start.orderCommand == .awaitStock(order: "o-1"))
        return start.state
    }

    /// Drives `state` through `results` for the steps `next` picks; returns the steps taken and the order commands.
    func drive(_ state: inout Fulfilment.State, _ results: [Fulfilment.Result]) -> (steps: [Fulfilment.Step], commands: [Order.Command]) {
        var steps: [Fulfilment.Step] = [], commands: [Order.Command] = []
        for result in results {
            guard let step = Fulfilment.next(state) else { break }
            steps.append(step)
            let transition = Fulfilment.record(result, of: step, in: state, policy: policy, random: 0.5)
            if let command = transition.orderCommand { commands.append(command) }
            state = transition.state
        }
        return (steps, commands)
    }

    /// Which successes may wait to be recorded with the next step's result: those that lead on to another forward
    /// step without confirming the order; never a confirmation, the last step, a failure, or anything once the
    /// instance has stopped going forward.
    @Test func aSuccessLeadsOnOnlyToAnotherForwardStepAndNeverHoldsBackTheConfirmation() throws {
        var state = try started()
        #expect(Fulfilment.leadsOn(.succeeded, of: .reserveStock, in: state))
        #expect(!Fulfilment.leadsOn(.failed("timeout"), of: .reserveStock, in: state))
        #expect(!Fulfilment.leadsOn(.refused("no stock"), of: .reserveStock, in: state))
        _ = drive(&state, [.succeeded])
        #expect(!Fulfilment.leadsOn(.succeeded, of: .authorisePayment, in: state), "the confirmation is written at once")
        _ = drive(&state, [.succeeded])
        #expect(Fulfilment.leadsOn(.succeeded, of: .commitStock, in: state))
        _ = drive(&state, [.succeeded])
        #expect(!Fulfilment.leadsOn(.succeeded, of: .capturePayment, in: state), "nothing follows the capture")
        var cancelled = try started()
        _ = drive(&cancelled, [.succeeded])
        cancelled = Fulfilment.cancel(cancelled, reason: "changed my mind")
        #expect(!Fulfilment.leadsOn(.succeeded, of: .authorisePayment, in: cancelled))
        #expect(!Fulfilment.leadsOn(.succeeded, of: .releaseStock, in: cancelled))
    }

    @Test func theHappyPathReservesAuthorisesConfirmsCommitsAndCaptures() throws {
        var state = try started()
        let (steps, commands) = drive(&state, Array(repeating: .succeeded, count: 4))
        #expect(steps == [.reserveStock, .authorisePayment, .commitStock, .capturePayment])
        #expect(commands == [.stockReserved(order: "o-1"), .confirm(order: "o-1")])
        #expect(state.status == .completed && Fulfilment.next(state) == nil)
    }

    @Test func noStockRejectsWithTheReasonAndHasNothingToUndo() throws {
        var state = try started()
        let (steps, commands) = drive(&state, [.refused("only 0 of MUG-001 left")])
        #expect(steps == [.reserveStock])
        #expect(commands == [.reject(order: "o-1", reason: "only 0 of MUG-001 left")])
        #expect(state.status == .rejected && Fulfilment.next(state) == nil)
    }

    @Test func aDeclinedPaymentReleasesTheStockAndRejects() throws {
        var state = try started()
        let (steps, commands) = drive(&state, [.succeeded, .refused("payment declined: insufficient funds"), .succeeded, .succeeded])
        #expect(steps == [.reserveStock, .authorisePayment, .releaseStock])
        #expect(commands == [.stockReserved(order: "o-1"), .reject(order: "o-1", reason: "payment declined: insufficient funds")])
        #expect(state.status == .rejected)
    }

    @Test func aStepThatKeepsFailingBeforeConfirmationIsRetriedThenCompensated() throws {
        var state = try started()
        _ = drive(&state, [.succeeded])
        var delays: [Duration] = []
        for _ in 1..<policy.attempts {
            let transition = Fulfilment.record(.failed("Billing answered 504"), of: .authorisePayment, in: state, policy: policy, random: 1)
            delays.append(try #require(transition.retryAfter))
            state = transition.state
            #expect(state.status == .running && Fulfilment.next(state) == .authorisePayment)
        }
        #expect(delays == [.milliseconds(100), .milliseconds(200)])  // doubling, the whole ceiling at random 1
        let last = Fulfilment.record(.failed("Billing answered 504"), of: .authorisePayment, in: state, policy: policy)
        guard case .reject(_, let reason)? = last.orderCommand else { Issue.record("the order was not rejected"); return }
        #expect(reason.contains("payment could not be authorised") && reason.contains("3 attempts"))
        state = last.state
        // The authorisation may have happened: it is voided as well as the stock released.
        let (steps, _) = drive(&state, [.succeeded, .succeeded])
        #expect(steps == [.releaseStock, .cancelPayment] && state.status == .rejected)
    }

    @Test func aFailingStepAfterConfirmationParksAndARetryReDrivesIt() throws {
        var state = try started()
        _ = drive(&state, [.succeeded, .succeeded, .succeeded])
        for _ in 1...policy.attempts {
            state = Fulfilment.record(.failed("Billing answered 503"), of: .capturePayment, in: state, policy: policy).state
        }
        #expect(state.status == .parked && state.parked?.step == .capturePayment && Fulfilment.next(state) == nil)
        #expect(state.reason?.contains("503") == true)
        state = Fulfilment.retry(state)
        #expect(state.status == .running && Fulfilment.next(state) == .capturePayment)
        _ = drive(&state, [.succeeded])
        #expect(state.status == .completed)
    }

    @Test func anUnexpectedAnswerParksAtOnce() throws {
        var state = try started()
        _ = drive(&state, [.broken("Catalog answered 400")])
        #expect(state.status == .parked && state.parked?.step == .reserveStock)
    }

    @Test func cancellingBeforeConfirmationReleasesAndVoids() throws {
        var state = try started()
        _ = drive(&state, [.succeeded, .succeeded])  // reserved, authorised (and confirmed)
        var fresh = try started()
        _ = drive(&fresh, [.succeeded])
        fresh = Fulfilment.cancel(fresh, reason: "changed my mind")
        // An authorisation that was in flight when the customer cancelled is recorded, then voided.
        let late = Fulfilment.record(.succeeded, of: .authorisePayment, in: fresh, policy: policy)
        #expect(late.orderCommand == nil)
        fresh = late.state
        let (steps, _) = drive(&fresh, [.succeeded, .succeeded])
        #expect(steps == [.releaseStock, .cancelPayment] && fresh.status == .cancelled)
        #expect(fresh.reason == "changed my mind")
    }

    @Test func cancellingACompletedOrderReturnsTheStockAndRefunds() throws {
        var state = try started()
        _ = drive(&state, Array(repeating: .succeeded, count: 4))
        state = Fulfilment.cancel(state, reason: "arrived broken")
        #expect(state.status == .compensating)
        let (steps, commands) = drive(&state, [.succeeded, .succeeded])
        #expect(steps == [.releaseStock, .cancelPayment] && commands.isEmpty && state.status == .cancelled)
        // A rejected order stays rejected.
        var rejected = try started()
        _ = drive(&rejected, [.refused("no stock")])
        #expect(Fulfilment.cancel(rejected, reason: "too late") == rejected)
    }

    @Test func aCompensationThatKeepsFailingParks() throws {
        var state = try started()
        _ = drive(&state, [.succeeded, .refused("payment declined: card declined")])
        for _ in 1...policy.attempts {
            state = Fulfilment.record(.failed("Catalog did not answer"), of: .releaseStock, in: state, policy: policy).state
        }
        #expect(state.status == .parked && state.parked?.step == .releaseStock)
    }
}
