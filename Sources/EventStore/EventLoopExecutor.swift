import NIOCore

/// Runs a task's jobs on a SwiftNIO event loop: for work that talks to one connection, round trip after round
/// trip, such as a transaction.
///
/// A task on the shared concurrency pool pays two thread hops per round trip: its query is handed to the
/// connection's event loop to be written, and the answer, read there, is handed back to the pool to resume the
/// task. Each wakes a sleeping thread. Run with this executor preferred (`withTaskExecutorPreference`), the
/// task writes from the loop itself and resumes on it in the same turn. `bin/bench checkout` measures it.
///
/// Only for work that does little between its round trips: whatever it computes, it computes on the loop,
/// holding up the loop's other connections meanwhile.
final class EventLoopExecutor: TaskExecutor, @unchecked Sendable {
    let eventLoop: any EventLoop

    init(_ eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        eventLoop.execute {
            job.runSynchronously(on: self.asUnownedTaskExecutor())
        }
    }
}
