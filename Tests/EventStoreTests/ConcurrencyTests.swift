import EventStore
import Foundation
import TestSupport
import Testing

@Suite("Concurrent writers")
struct ConcurrencyTests {
    /// 8 writers × 500 appends: every other append to the writer's own stream, the rest to two streams all
    /// writers share, read-then-append with the version read and a retry on conflict.
    @Test(.timeLimit(.minutes(3)))
    func everyEventIsStoredOnceWithContiguousVersionsAndReadOnceInOrder() async throws {
        try await withStore { store, _ in
            let writers = 8, appendsPerWriter = 500
            let shared = [uniqueStream("shared"), uniqueStream("shared")]
            let (written, conflicts) = try await withThrowingTaskGroup(of: ([UUID], Int).self) { group in
                for writer in 0..<writers {
                    group.addTask {
                        let own = uniqueStream("own")
                        var ids: [UUID] = [], conflicts = 0
                        for index in 0..<appendsPerWriter {
                            let new = event(writer * appendsPerWriter + index)
                            if index.isMultiple(of: 2) {
                                try await store.append([new], to: own, expectedVersion: .exact(Int64(index / 2)))
                            } else {
                                let stream = shared[(index / 2) % shared.count]
                                while true {
                                    let version = try await store.streamVersion(stream)
                                    do {
                                        try await store.append([new], to: stream, expectedVersion: .exact(version))
                                        break
                                    } catch is WrongExpectedVersion {
                                        conflicts += 1
                                    }
                                }
                            }
                            ids.append(new.id)
                        }
                        return (ids, conflicts)
                    }
                }
                return try await group.reduce(into: ([UUID](), 0)) { $0.0 += $1.0; $0.1 += $1.1 }
            }
            #expect(written.count == writers * appendsPerWriter)
            // Shared streams really were contended, so the retry path ran.
            #expect(conflicts > 0)

            let all = try await readEverything(store)
            #expect(all.count == written.count)
            #expect(Set(all.map(\.id)) == Set(written))
            #expect(zip(all, all.dropFirst()).allSatisfy { $0.position < $1.position })

            var versions: [StreamName: [Int64]] = [:]
            for event in all { versions[event.stream, default: []].append(event.streamVersion) }
            #expect(versions.count == writers + shared.count)
            for (stream, streamVersions) in versions {
                // Within one stream, commit order is version order, with no holes.
                #expect(streamVersions == Array(1...Int64(streamVersions.count)), "\(stream)")
                #expect(try await store.streamVersion(stream) == Int64(streamVersions.count))
            }
        }
    }
}
