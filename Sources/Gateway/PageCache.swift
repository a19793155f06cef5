import Foundation
import Synchronization

/// Public pages (the catalog's listings and product pages) kept for a short time, so that a crowd reading the
/// same page costs one call to the service per page and period, not one per reader. Concurrent misses of one
/// page share one fetch; failures are not kept; the number of pages is capped (keys come from clients'
/// queries), and past the cap a page is fetched and not kept.
public final class PageCache: Sendable {
    public struct Page: Sendable {
        public let body: Data
        /// A strong entity tag of the body.
        public let etag: String
        let fetched: ContinuousClock.Instant
    }

    let lifetime: Duration
    let capacity: Int
    /// What time it is (the tests' clock is their own).
    let now: @Sendable () -> ContinuousClock.Instant
    private enum Lookup { case kept(Page), fetching(Task<Page, any Error>) }
    private let state = Mutex<(pages: [String: Page], fetching: [String: Task<Page, any Error>])>(([:], [:]))

    /// `lifetime` zero keeps nothing: every read is fetched.
    public init(lifetime: Duration, capacity: Int = 2_000, now: @escaping @Sendable () -> ContinuousClock.Instant = { .now }) {
        self.lifetime = lifetime
        self.capacity = capacity
        self.now = now
    }

    /// The page under `key`, fetched by `fetch` when there is none younger than the lifetime.
    public func page(_ key: String, fetch: @escaping @Sendable () async throws -> Data) async throws -> Page {
        guard lifetime > .zero else { return Page(try await fetch(), fetched: now()) }
        let now = self.now(), clock = self.now
        let lifetime = self.lifetime
        let next = state.withLock { state -> Lookup in
            if let page = state.pages[key], now - page.fetched < lifetime { return .kept(page) }
            if let running = state.fetching[key] { return .fetching(running) }
            let task = Task { Page(try await fetch(), fetched: clock()) }
            state.fetching[key] = task
            return .fetching(task)
        }
        let task: Task<Page, any Error>
        switch next {
        case .kept(let page): return page
        case .fetching(let running): task = running
        }
        do {
            let page = try await task.value
            keep(page, under: key)
            return page
        } catch {
            state.withLock { _ = $0.fetching.removeValue(forKey: key) }
            throw error
        }
    }

    private func keep(_ page: Page, under key: String) {
        state.withLock { state in
            state.fetching.removeValue(forKey: key)
            if state.pages.count >= capacity, state.pages[key] == nil {
                let now = self.now()
                state.pages = state.pages.filter { now - $0.value.fetched < lifetime }
                if state.pages.count >= capacity { return }
            }
            state.pages[key] = page
        }
    }
}

extension PageCache.Page {
    public init(_ body: Data, fetched: ContinuousClock.Instant = .now) {
        self.body = body
        etag = "\"\(Wire.digest(body))\""
        self.fetched = fetched
    }
}
