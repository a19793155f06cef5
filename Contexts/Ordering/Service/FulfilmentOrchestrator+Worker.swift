import Essentials
import EventStore
import Foundation
import Logging
import Ordering
import Telemetry
import Tracing

/// The worker: one instance, step after step, while this orchestrator holds its lock.
extension FulfilmentOrchestrator {
    /// Works one instance, which this worker holds (`claimed`: as read once its lock was taken), until it is
    /// finished, parked, or waiting for a retry further off than a poll.
    ///
    /// A forward step that succeeds and leads at once to another (``Fulfilment/leadsOn(_:of:in:)``: stock reserved,
    /// authorise the payment; stock committed, capture it) is recorded together with that next step's result, in one write: one durable commit
    /// fewer on the way to the order's confirmation, and another on the way to its completion. Every step is idempotent on the
    /// other side (its key is the saga's and the step's), so a crash between the two only repeats the first, which
    /// its service answers from its stored reply. The confirmation is never held back.
    func work(_ id: String, claimed: Sagas.Instance? = nil) async {
        var current = claimed
        /// Results of this worker's steps not yet written (at most one success that leads to the next step).
        var unwritten: [Performed] = []
        // Left unwritten (stopped, or the write failed): the step is done again by whoever works the instance next.
        defer { for each in unwritten { each.span.end() } }
        while !Task.isCancelled {
            do {
                // Read under the lock (what the previous holder committed is visible), then go on with what this
                // worker wrote. A cancellation that lands meanwhile is seen at the next write, which finds the row
                // at another version and decides again on it: at worst one more forward step is done, and then undone.
                if current == nil { current = try await sagas.instance(id) }
                guard let instance = current, let due = instance.dueAt else { return }
                let wait = due.timeIntervalSinceNow
                if wait > 0, unwritten.isEmpty {
                    guard wait < configuration.pollInterval.seconds * 4 else { return }
                    try await Task.sleep(for: .seconds(wait))
                    current = nil
                    continue
                }
                let state = Performed.apply(unwritten, to: instance.state, policy: configuration.retry).last?.state ?? instance.state
                guard let step = Fulfilment.next(state) else {
                    try await sagas.update(id, attempt: nil, known: instance) { Fulfilment.Transition(state: $0) }  // marks it finished
                    return
                }
                let performed = try await perform(step, of: instance, in: state)
                if unwritten.isEmpty, Fulfilment.leadsOn(performed.result, of: performed.step, in: state) {
                    unwritten.append(performed)
                    continue
                }
                let recorded = unwritten + [performed]
                unwritten = []
                current = try await record(recorded, of: instance)
            } catch {
                if Task.isCancelled { return }
                logger.error("working a saga failed; it stays due", metadata: ["saga": "\(id)", "error": "\(describe(error))"])
                try? await Task.sleep(for: configuration.pollInterval)
                return
            }
        }
    }

    /// A step performed, and what came of it.
    struct Performed: Sendable {
        let step: Fulfilment.Step
        let result: Fulfilment.Result
        let attempt: Sagas.Attempt
        let span: any Span

        /// The transition of each result, applied one after the other to `state`.
        static func apply(_ performed: [Performed], to state: Fulfilment.State, policy: Fulfilment.RetryPolicy) -> [Fulfilment.Transition] {
            var state = state, transitions: [Fulfilment.Transition] = []
            for each in performed {
                let transition = Fulfilment.record(each.result, of: each.step, in: state, policy: policy)
                transitions.append(transition)
                state = transition.state
            }
            return transitions
        }
    }

    /// Performs one attempt of `step` on `state` (the instance's, with what is not written yet), in a span of the
    /// checkout's trace; the step's calls carry the checkout's correlation id and trace.
    private func perform(_ step: Fulfilment.Step, of instance: Sagas.Instance, in state: Fulfilment.State) async throws -> Performed {
        let id = instance.id, attempt = state.failures + 1, started = Date()
        let span = startSpan("saga \(step)", context: .continuing(instance.traceparent), ofKind: .internal)
        span.attributes["shop.order"] = id
        var metadata = instance.metadata
        metadata.traceparent = span.context.traceContext?.traceparent ?? instance.traceparent
        let result = await ServiceContext.withValue(span.context) {
            await EventMetadata.$current.withValue(metadata) {
                configuration.observer?(id, step, true)
                defer { configuration.observer?(id, step, false) }
                return await steps.perform(step, for: state)
            }
        }
        CrashPoint.reached("after-\(step)")
        if case .succeeded = result {} else { span.setStatus(.init(code: .error)) }
        return Performed(step: step, result: result, attempt: .init(
            step: step.rawValue, attempt: attempt, outcome: .init(result), reason: result.reason, startedAt: started, finishedAt: Date()), span: span)
    }

    /// Records what was performed, in one write: the instance's new state, the order's commands, the timeline's
    /// entries; the events carry the last step's trace. Ends the steps' spans.
    private func record(_ performed: [Performed], of instance: Sagas.Instance) async throws -> Sagas.Instance {
        guard let last = performed.last else { return instance }
        defer { for each in performed { each.span.end() } }
        var metadata = instance.metadata
        metadata.traceparent = last.span.context.traceContext?.traceparent ?? instance.traceparent
        let policy = configuration.retry
        let written: Sagas.Instance
        do {
            written = try await ServiceContext.withValue(last.span.context) {
                try await EventMetadata.$current.withValue(metadata) {
                    try await sagas.update(instance.id, attempts: performed.map(\.attempt), known: instance) { fresh in
                        Performed.apply(performed, to: fresh, policy: policy)
                    }
                }
            }
        } catch {
            for each in performed { each.span.recordError(error) }
            throw error
        }
        for each in performed {
            log(instance.id, each.step, each.attempt.attempt, each.result, written,
                took: (each.attempt.finishedAt ?? Date()).timeIntervalSince(each.attempt.startedAt))
        }
        return written
    }

    private func log(_ id: String, _ step: Fulfilment.Step, _ attempt: Int, _ result: Fulfilment.Result, _ written: Sagas.Instance,
                     took seconds: Double) {
        let current = EventMetadata.current, outcome = Sagas.StepOutcome(result)
        var metadata: Logger.Metadata = ["order": "\(id)", "step": "\(step)", "attempt": "\(attempt)", "outcome": "\(outcome)",
                                         "status": "\(written.status)", "correlation_id": "\(current?.correlationID ?? id)",
                                         "trace_id": "\(TraceContext(traceparent: current?.traceparent)?.traceID ?? "")",
                                         "duration_ms": "\(Int((seconds * 1000).rounded()))"]
        metrics?.timer("saga_step_duration_seconds", [("step", step.rawValue), ("outcome", outcome.rawValue)])
            .recordNanoseconds(Int64(seconds * 1e9))
        if outcome == .failed { metrics?.counter("saga_step_retries_total", [("step", step.rawValue)]).increment() }
        if let reason = result.reason { metadata["reason"] = "\(reason)" }
        switch written.status {
        case .parked: logger.error("saga parked: an operator must look", metadata: metadata)
        case _ where outcome == .failed: logger.warning("saga step failed", metadata: metadata)
        default: logger.info("saga step done", metadata: metadata)
        }
    }
}

extension Fulfilment.Result {
    var reason: String? {
        switch self {
        case .succeeded: nil
        case .refused(let reason), .failed(let reason), .broken(let reason): reason
        }
    }
}

