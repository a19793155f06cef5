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
    func work(_ id: String, claimed: Sagas.Instance? = nil) async {
        var current = claimed
        while !Task.isCancelled {
            do {
                // Read under the lock (what the previous holder committed is visible), then go on with what this
                // worker wrote. A cancellation that lands meanwhile is seen at the next write, which finds the row
                // at another version and decides again on it: at worst one more forward step is done, and then undone.
                if current == nil { current = try await sagas.instance(id) }
                guard let instance = current, let due = instance.dueAt else { return }
                let wait = due.timeIntervalSinceNow
                if wait > 0 {
                    guard wait < configuration.pollInterval.seconds * 4 else { return }
                    try await Task.sleep(for: .seconds(wait))
                    current = nil
                    continue
                }
                guard let step = Fulfilment.next(instance.state) else {
                    try await sagas.update(id, attempt: nil, known: instance) { Fulfilment.Transition(state: $0) }  // marks it finished
                    return
                }
                current = try await run(step, of: instance)
            } catch {
                if Task.isCancelled { return }
                logger.error("working a saga failed; it stays due", metadata: ["saga": "\(id)", "error": "\(describe(error))"])
                try? await Task.sleep(for: configuration.pollInterval)
                return
            }
        }
    }

    /// Performs one attempt of `step` and records its result, in a span of the checkout's trace; the step's calls
    /// and the events it leads to carry the checkout's correlation id and trace.
    private func run(_ step: Fulfilment.Step, of instance: Sagas.Instance) async throws -> Sagas.Instance {
        let id = instance.id, attempt = instance.state.failures + 1, started = Date()
        return try await withSpan("saga \(step)", context: .continuing(instance.traceparent), ofKind: .internal) { span in
            span.attributes["shop.order"] = id
            var metadata = instance.metadata
            metadata.traceparent = span.context.traceContext?.traceparent ?? instance.traceparent
            return try await EventMetadata.$current.withValue(metadata) {
                configuration.observer?(id, step, true)
                let result = await steps.perform(step, for: instance.state)
                configuration.observer?(id, step, false)
                CrashPoint.reached("after-\(step)")
                let policy = configuration.retry
                let written = try await sagas.update(id, attempt: .init(step: step.rawValue, attempt: attempt, outcome: .init(result),
                                                                         reason: result.reason, startedAt: started), known: instance) { fresh in
                    Fulfilment.record(result, of: step, in: fresh, policy: policy)
                }
                log(id, step, attempt, result, written, took: Date().timeIntervalSince(started))
                if case .succeeded = result {} else { span.setStatus(.init(code: .error)) }
                return written
            }
        }
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

