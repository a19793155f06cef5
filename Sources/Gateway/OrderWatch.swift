import Contracts
import Foundation
import Logging
import NIOCore
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
    private let waiting = Mutex<[String: Waiters]>([:])
    private let following = Atomic<Bool>(false)
    /// How long one request to the feed waits for an event.
    static let longPoll = 20

    struct Waiters {
        /// Bumped at each change of the order.
        var generation: UInt64 = 0
        /// The suspended waits, by id; `nil` for a wait that timed out before it could suspend.
        var suspended: [UInt64: CheckedContinuation<Void, Never>?] = [:]
        /// Waiters registered, whether or not they are suspended now.
        var count = 0
    }

    /// - Parameter feed: Ordering, as a downstream of the watch's own (the long poll must not take a place that
    ///   ordinary calls need).
    public init(feed: Downstream, logger: Logger) {
        self.feed = feed
        self.logger = logger
    }

    /// Whether the watch follows the feed now.
    public var isFollowing: Bool { following.load(ordering: .relaxed) }

    /// How many requests wait for an order now.
    public var waiters: Int { waiting.withLock { $0.values.reduce(0) { $0 + $1.count } } }

    /// Runs `body` with a ticket that tells when `order` has changed since the ticket last looked: register first,
    /// then read the order, then wait, and no change between the read and the wait is missed.
    public func watching<Result>(_ order: String, _ body: (Ticket) async throws -> Result) async rethrows -> Result {
        let generation = waiting.withLock { waiting in
            waiting[order, default: Waiters()].count += 1
            return waiting[order]!.generation
        }
        defer {
            waiting.withLock { waiting in
                waiting[order]?.count -= 1
                if waiting[order]?.count == 0 { waiting[order] = nil }
            }
        }
        return try await body(Ticket(watch: self, order: order, seen: generation))
    }

    public final class Ticket: @unchecked Sendable {  // used by the one task that holds it
        let watch: OrderWatch
        let order: String
        var seen: UInt64

        init(watch: OrderWatch, order: String, seen: UInt64) {
            self.watch = watch
            self.order = order
            self.seen = seen
        }

        /// Returns when the order has changed since the last call (or since the ticket was made), or after `timeout`;
        /// after a second at most while the watch does not follow the feed.
        public func changed(within timeout: Duration) async {
            let limit = watch.isFollowing ? timeout : min(timeout, .seconds(1))
            seen = await watch.wait(for: order, past: seen, timeout: limit)
        }
    }

    /// Waits until `order`'s generation passes `seen`, or `timeout`; answers the generation it saw last.
    private func wait(for order: String, past seen: UInt64, timeout: Duration) async -> UInt64 {
        let id = UInt64.random(in: 0...UInt64.max)
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                await withCheckedContinuation { continuation in
                    let resumeNow = self.waiting.withLock { waiting -> Bool in
                        guard let waiters = waiting[order], waiters.generation == seen else { return true }
                        if waiters.suspended[id] != nil {  // timed out already
                            waiting[order]!.suspended[id] = nil
                            return true
                        }
                        waiting[order]!.suspended[id] = .some(continuation)
                        return false
                    }
                    if resumeNow { continuation.resume() }
                }
            }
            group.addTask { try? await Task.sleep(for: timeout) }
            await group.next()
            group.cancelAll()
            // If the sleep ended first, the wait must end too: resume it, or mark it timed out if it has not suspended yet.
            let suspended = self.waiting.withLock { waiting -> CheckedContinuation<Void, Never>? in
                guard waiting[order] != nil else { return nil }
                switch waiting[order]!.suspended[id] {
                case .some(.some(let continuation)):
                    waiting[order]!.suspended[id] = nil
                    return continuation
                case .some(.none):
                    return nil
                case .none:
                    waiting[order]!.suspended[id] = .some(nil)
                    return nil
                }
            }
            suspended?.resume()
        }
        waiting.withLock { waiting in
            if case .some(.none) = waiting[order]?.suspended[id] { waiting[order]!.suspended[id] = nil }
        }
        return waiting.withLock { $0[order]?.generation ?? seen }
    }

    /// `order` changed: wakes its waiters.
    func changed(_ order: String) {
        let woken = waiting.withLock { waiting -> [CheckedContinuation<Void, Never>] in
            guard var waiters = waiting[order] else { return [] }
            waiters.generation += 1
            let continuations = waiters.suspended.values.compactMap { $0 }
            waiters.suspended = [:]
            waiting[order] = waiters
            return continuations
        }
        for continuation in woken { continuation.resume() }
    }

    /// Every order's waiters: after the feed could not be followed for a while, any of them may have changed.
    private func changedAll() {
        for order in waiting.withLock({ Array($0.keys) }) { changed(order) }
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            var after: String?
            var failures = 0
            while !Task.isCancelled {
                do {
                    let start = after ?? "head"
                    let answer = try await self.feed.send(.init(path: "/feed/orders?after=\(start)&limit=1000&wait=\(after == nil ? 0 : Self.longPoll)"))
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
