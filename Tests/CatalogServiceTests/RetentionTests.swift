import EventStore
import Foundation
import ServiceRuntime
import TestSupport
import Testing

@Suite("Idempotency keys are forgotten after their window")
struct RetentionTests {
    @Test func aSweepForgetsTheKeysOlderThanTheWindowInBatchesAndKeepsTheRest() async throws {
        try await withStore { store, _ in
            try await store.withConnection { connection in
                try await connection.run("""
                    INSERT INTO idempotency_keys (key, fingerprint, reply, created_at)
                    SELECT 'old-' || n, 'f', '{}'::jsonb, now() - interval '40 days' - n * interval '1 minute' FROM generate_series(1, 7) AS n
                    """, logger: store.logger)
                try await connection.run("""
                    INSERT INTO idempotency_keys (key, fingerprint, reply, created_at)
                    SELECT 'recent-' || n, 'f', '{}'::jsonb, now() - interval '29 days' FROM generate_series(1, 3) AS n
                    """, logger: store.logger)
            }
            let retention = IdempotencyKeyRetention(store: store, batch: 2)
            #expect(try await retention.sweep() == 7)
            let left = try await store.withConnection { connection in
                var keys: [String] = []
                for try await key in try await connection.query("SELECT key FROM idempotency_keys ORDER BY key", logger: store.logger).decode(String.self) {
                    keys.append(key)
                }
                return keys
            }
            #expect(left == ["recent-1", "recent-2", "recent-3"])
            #expect(try await retention.sweep() == 0)
            #expect(retention.check() == nil)
        }
    }
}
