import Contracts
import Essentials
import Foundation
import Logging
import NIOCore
import ServiceClient
import ServiceLifecycle
import Synchronization

/// What the BFF knows of orders changing: one request at a time follows Ordering's published feed
/// (`GET /feed/orders?after=…&wait=20`) and wakes whoever waits for one of the orders it names. A client's long poll
/// or event stream thus holds no connection to Ordering while it waits: only a place in ``waiting``, and a quick
/// `GET /orders/{id}` each time its order changes.
///
/// While the feed cannot be followed (Ordering down, the feed failing), waiters look again every second instead, and
/// ``isFollowing`` says so (readiness reports it).
public final class OrderWatch: Service, Sendable {
    let feed: Downstream
    let logger: Logger
    /// Each waited-for order's signal (bumped when the feed names the order) and how many wait on it.
    private let waiting = ChangeSignals<String>()
    private let following = Atomic<Bool>(false)
    /// How long one request to the feed waits for an event.
    static let longPoll = 20

    /// - Parameter feed: Ordering, as a downstream of the watch's own (the long poll must not take a place that
    ///   ordinary calls need).
    public init(feed: Downstream, logger: Logger) {
        self.feed = feed
        self.logger = logger
    }

    /// Whether the watch follows the feed now.
    public var isFollowing: Bool { following.load(ordering: .relaxed) }

    /// How many requests wait for an order now.
    public var waiters: Int { waiting.watchers }

    /// Runs `body` with a ticket that tells when `order` has changed since the ticket last looked: register first,
    /// then read the order, then wait, and no change between the read and the wait is missed.
    public func watching<Result>(_ order: String, _ body: (Ticket) async throws -> Result) async rethrows -> Result {
        try await waiting.watching(order) { signal in try await body(Ticket(watch: self, signal: signal)) }
    }

    public final class Ticket: @unchecked Sendable {  // used by the one task that holds it
        let watch: OrderWatch
        let signal: ChangeSignal
        var seen: UInt64

        init(watch: OrderWatch, signal: ChangeSignal) {
            self.watch = watch
            self.signal = signal
            self.seen = signal.generation
        }

        /// Returns when the order has changed since the last call (or since the ticket was made), or after `timeout`;
        /// after a second at most while the watch does not follow the feed.
        public func changed(within timeout: Duration) async {
            await signal.wait(past: seen, timeout: watch.isFollowing ? timeout : min(timeout, .seconds(1)))
            seen = signal.generation
        }
    }

    /// `order` changed: wakes its waiters.
    func changed(_ order: String) {
        waiting.signal([order])
    }

    /// Every order's waiters: after the feed could not be followed for a while, any of them may have changed.
    private func changedAll() {
        waiting.signalAll()
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            var after: String?
            var failures = 0
            while !Task.isCancelled {
                do {
                    let start = after ?? "head"
                    let answer = try await self.feed.send(.init(path: OrderingRoutes.feed(after: start, limit: 1000, wait: after == nil ? 0 : Self.longPoll)))
                    guard answer.status == .ok else { throw Downstream.Failure.unavailable(service: self.feed.configuration.name, reason: "feed answered \(answer.status.code)") }
                    let page = try JSONDecoder().decode(OrderingFeed.Page.self, from: Data(buffer: answer.body))
                    if after == nil || failures > 0 { self.changedAll() }  // a change may have been missed before
                    for entry in page.events { self.changed(entry.event.order) }
                    after = page.next
                    if failures > 0 { self.logger.info("following Ordering's feed again") }
                    failures = 0
                    self.following.store(true, ordering: .relaxed)
                } catch {
                    failures += 1
                    self.following.store(false, ordering: .relaxed)
                    if failures == 1 || failures % 30 == 0 {
                        self.logger.warning("cannot follow Ordering's feed: waits look again every second", metadata: ["error": "\(error)", "failures": "\(failures)"])
                    }
                    try? await Task.sleep(for: .seconds(1))
                }
            }
        }
    }
}
