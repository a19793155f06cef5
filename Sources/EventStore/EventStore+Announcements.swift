import Essentials
import Foundation
import Logging
import PostgresNIO

/// Wake-ups: this process's appends wake its own waiters at once and are announced to other processes (NOTIFY);
/// other processes' announcements wake every waiter here.
extension EventStore {
    func appended(to streams: Set<StreamName>) {
        appendedHere.signal()
        eventsAvailable.signal()
        streamSignals.signal(streams)
    }

    /// Events may have been appended by another process, to any stream: wakes every waiter.
    private func announced() {
        eventsAvailable.signal()
        streamSignals.signalAll()
    }

    /// Runs `body` with a signal that is bumped whenever events may have been appended to `stream`: by an append of
    /// this process to it, or by whatever another process announces (an announcement does not name its streams).
    ///
    /// For a waiter on one stream (an order's outcome), which ``eventsAvailable`` would wake at every append of
    /// every stream: with many waiting, each append cost a read per waiter.
    public func watching<Result>(_ stream: StreamName, _ body: (ChangeSignal) async throws -> Result) async rethrows -> Result {
        try await streamSignals.watching(stream, body)
    }

    /// Holds a connection that LISTENs for appends of every process and wakes this process's subscribers.
    /// Reconnects after a failure; subscribers poll meanwhile.
    func listenForAppends() async {
        while !Task.isCancelled {
            do {
                try await client.withConnection { connection in
                    try await connection.listen(on: Self.announcementChannel) { notifications in
                        // Anything appended while nobody listened would otherwise wait for the next poll.
                        announced()
                        listening.signal()
                        for try await notification in notifications where notification.payload != announcer { announced() }
                    }
                }
            } catch {
                if Task.isCancelled { return }
                logger.warning("listening for appends failed; subscribers poll until it is back",
                               metadata: ["error": "\(describe(error))"])
                try? await Task.sleep(for: .seconds(1))
            }
        }
    }

    /// Announces this process's appends to other processes with a NOTIFY sent after they commit.
    ///
    /// Not a NOTIFY inside the appending transaction: PostgreSQL commits notifying transactions one at a
    /// time (a lock held through the commit's flush), which would undo group commit for concurrent writers.
    /// And not one per append either: a NOTIFY is a statement of its own, which costs the server about as
    /// much as a small append. So announcements are throttled to one per `announceInterval` (an append
    /// after a quiet spell goes out at once), each covering every append before it. `bin/bench append`
    /// measures both choices. A process that dies between its commit and its announcement costs other
    /// processes' subscribers at most one poll interval.
    func announceAppends() async {
        let interval = configuration.announceInterval
        var seen = appendedHere.generation
        var lastSent = ContinuousClock.now - interval
        while !Task.isCancelled {
            await appendedHere.wait(past: seen)
            let next = lastSent + interval
            if ContinuousClock.now < next {
                try? await Task.sleep(until: next, clock: .continuous)
            }
            if Task.isCancelled { return }
            seen = appendedHere.generation
            lastSent = ContinuousClock.now
            do {
                let announcer = announcer
                try await pooled("an announcement") { client in
                    try await client.run("SELECT pg_notify(\(Self.announcementChannel), \(announcer))", logger: self.logger)
                }
            } catch {
                if Task.isCancelled { return }
                logger.debug("announcing appends failed", metadata: ["error": "\(describe(error))"])
            }
        }
    }
}

