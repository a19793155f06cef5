import Essentials
import EventStore
import Foundation
import TestSupport
import Testing

@Suite("What does not grow with history: the backlog's count, event ids")
struct HistoryCostTests {
    @Test func theBacklogIsCountedUpToItsLimitAndEstimatedBeyond() async throws {
        try await withStore { store, _ in
            let stream = uniqueStream()
            let first = try await store.append((1...5).map { event($0) }, to: stream, expectedVersion: .noStream)
            let start = Position(transactionID: first.firstPosition.transactionID, globalPosition: first.firstPosition.globalPosition - 1)
            let five = try await store.backlog(after: start)
            #expect(five.events == 5 && five.exact && five.oldest != nil)
            _ = try await store.append((6...30).map { event($0) }, to: stream, expectedVersion: .exact(5))
            let counted = try await store.backlog(after: start)
            #expect(counted.events == 30 && counted.exact)
            // Past the limit the count stops, and the distance between positions stands in for it.
            let estimated = try await store.backlog(after: start, exactUpTo: 10)
            #expect(!estimated.exact && estimated.events == 30, "\(estimated)")
            #expect(estimated.oldest == five.oldest)
            let head = try await store.headPosition()
            let none = try await store.backlog(after: head)
            #expect(none.events == 0 && none.exact && none.oldest == nil)
        }
    }

    @Test func eventIdsAreTimeOrderedVersion7UUIDs() throws {
        let earlier = Date(timeIntervalSince1970: 1_800_000_000), later = earlier.addingTimeInterval(0.002)
        let ids = (0..<200).map { UUID.timeOrdered(at: $0 < 100 ? earlier : later) }
        #expect(Set(ids).count == 200)
        for id in ids {
            let text = id.uuidString
            #expect(Array(text)[14] == "7", "version 7: \(text)")
            #expect("89AB".contains(Array(text)[19]), "variant 10: \(text)")
        }
        // The first 48 bits are the milliseconds: every id of a later millisecond sorts after every earlier one.
        #expect(ids[..<100].map(\.uuidString).max()! < ids[100...].map(\.uuidString).min()!)
        #expect(ids[0].uuidString.hasPrefix(String(format: "%08X", UInt32(1_800_000_000_000 >> 16))))
        // An appended event gets one unless it brings its own.
        #expect(Array(NewEvent(type: "t", payload: Data("{}".utf8)).id.uuidString)[14] == "7")
    }
}
