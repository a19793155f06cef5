import Foundation
import Gateway
import Synchronization
import Testing

final class Counter: Sendable {
    private let count = Atomic(0)
    @discardableResult func add() -> Int { count.add(1, ordering: .relaxed).newValue }
    var value: Int { count.load(ordering: .relaxed) }
}

@Suite("The BFFs' cache of public pages")
struct PageCacheTests {
    struct Refused: Error {}

    @Test func concurrentReadersOfOnePageShareOneFetchAndTheOthersGetTheirOwn() async throws {
        let cache = PageCache(lifetime: .seconds(60))
        let fetches = Counter()
        let (gate, open) = AsyncStream<Void>.makeStream()
        let bodies = try await withThrowingTaskGroup(of: String.self) { group in
            for _ in 0..<20 {
                group.addTask {
                    String(decoding: try await cache.page("a") {
                        fetches.add()
                        for await _ in gate { break }  // held until every reader has asked
                        return Data("page a".utf8)
                    }.body, as: UTF8.self)
                }
            }
            // Let every reader ask, then release the one fetch.
            while fetches.value == 0 { await Task.yield() }
            for _ in 0..<100 { await Task.yield() }
            open.yield()
            open.finish()  // (a second fetch, were there one, is let go too)
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(bodies == Array(repeating: "page a", count: 20))
        #expect(fetches.value == 1)
        let other = try await cache.page("b") { Data("page b".utf8) }
        #expect(String(decoding: other.body, as: UTF8.self) == "page b" && other.etag.hasPrefix("\""))
        _ = try await cache.page("a") { fetches.add(); return Data() }
        #expect(fetches.value == 1, "a kept page is not fetched again within its lifetime")
    }

    @Test func aPageOlderThanItsLifetimeIsFetchedAgainAndAFailureIsNotKept() async throws {
        // A clock of the test's own: the page's age is what it says, however slowly the test runs.
        let clock = Mutex(ContinuousClock.now)
        let cache = PageCache(lifetime: .milliseconds(30), now: { clock.withLock { $0 } })
        let fetches = Counter()
        let fetch: @Sendable () async throws -> Data = { Data("v\(fetches.add())".utf8) }
        #expect(try await cache.page("a", fetch: fetch).body == Data("v1".utf8))
        clock.withLock { $0 += .milliseconds(29) }
        #expect(try await cache.page("a", fetch: fetch).body == Data("v1".utf8))
        clock.withLock { $0 += .milliseconds(1) }
        #expect(try await cache.page("a", fetch: fetch).body == Data("v2".utf8))

        await #expect(throws: Refused.self) { try await cache.page("c") { throw Refused() } }
        #expect(try await cache.page("c") { Data("c".utf8) }.body == Data("c".utf8))
    }

    @Test func pastItsCapacityAPageIsServedButNotKept() async throws {
        let cache = PageCache(lifetime: .seconds(60), capacity: 2)
        let fetches = Counter()
        for key in ["a", "b", "c", "c"] {
            _ = try await cache.page(key) { fetches.add(); return Data(key.utf8) }
        }
        #expect(fetches.value == 4)
        _ = try await cache.page("a") { fetches.add(); return Data() }
        #expect(fetches.value == 4)
    }

    @Test func aLifetimeOfZeroKeepsNothing() async throws {
        let cache = PageCache(lifetime: .zero)
        let fetches = Counter()
        for _ in 0..<3 { _ = try await cache.page("a") { fetches.add(); return Data() } }
        #expect(fetches.value == 3)
    }
}
