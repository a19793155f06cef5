import Essentials
import EventStore
import Foundation
import Gateway
import Hummingbird
import HummingbirdTesting
import Logging
import ServiceClient
import Synchronization
import TestSupport
import Testing

/// A stand-in for one instance of a service: it says who it is, can be made to fail (as a dead instance
/// does, from its callers' view) and to hang.
final class FakeInstance: Sendable {
    let name: String
    let failing = Atomic(false)
    /// While set, calls of `/who` are held until `stopHanging()`: how long a test's checks take (seconds, on a
    /// loaded machine) must not decide whether the calls are still in flight.
    let hanging = Atomic(false)
    private let released = ChangeSignal()
    /// Calls of `/who` received.
    let calls = Atomic(0)
    init(_ name: String) { self.name = name }

    func stopHanging() {
        hanging.store(false, ordering: .relaxed)
        released.signal()
    }

    func application() -> some ApplicationProtocol {
        let router = Router()
        router.get("/health/ready") { _, _ -> Response in
            Response(status: self.failing.load(ordering: .relaxed) ? .serviceUnavailable : .ok)
        }
        router.get("/who") { _, _ -> Response in
            self.calls.add(1, ordering: .relaxed)
            // The generation first: a release between the two reads is not missed. (At most a minute, so that a
            // test that failed before releasing its calls cannot keep its server from stopping.)
            let seen = self.released.generation
            if self.hanging.load(ordering: .relaxed) { await self.released.wait(past: seen, timeout: .seconds(60)) }
            guard !self.failing.load(ordering: .relaxed) else { return Response(status: .internalServerError) }
            return Response(status: .ok, body: .init(byteBuffer: ByteBuffer(string: self.name)))
        }
        return Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
    }
}

/// Two live instances, and a downstream over them.
func withTwoInstances(
    _ configure: (inout Downstream.Configuration) -> Void = { _ in },
    _ body: @escaping @Sendable (Downstream, FakeInstance, FakeInstance) async throws -> Void
) async throws {
    let (a, b) = (FakeInstance("a"), FakeInstance("b"))
    // Generous timeouts unless a test sets its own: the instances are local, but at the start of a full test run
    // both cores are busy with every suite starting at once, and a connection may take longer than the
    // production half second to be accepted.
    var configuration = Downstream.Configuration(name: "catalog", instances: [], timeout: .seconds(10), failureThreshold: 3,
                                                 openFor: .milliseconds(300), concurrency: 8, healthInterval: .seconds(60),
                                                 connectTimeout: .seconds(5))
    configure(&configuration)
    let settings = configuration
    try await a.application().test(.live) { first in
        try await b.application().test(.live) { second in
            var configuration = settings
            configuration.instances = ["http://127.0.0.1:\(try #require(first.port))", "http://127.0.0.1:\(try #require(second.port))"]
            let downstream = Downstream(configuration, identity: nil, logger: TestDatabase.logger)
            do {
                try await body(downstream, a, b)
            } catch {
                a.stopHanging()
                b.stopHanging()
                try await downstream.shutdown()
                throw error
            }
            try await downstream.shutdown()
        }
    }
}

func who(_ downstream: Downstream) async throws(Downstream.Failure) -> String {
    String(buffer: try await downstream.send(.init(path: "/who")).body)
}

@Suite("Downstream services: balancing, health, breaker, bulkhead")
struct DownstreamTests {
    @Test func loadIsSpreadAndAFailingInstanceIsRoutedAroundUntilItRecovers() async throws {
        try await withTwoInstances { downstream, a, _ in
            var answers: [String] = []
            for _ in 0..<10 { answers.append(try await who(downstream)) }
            #expect(Set(answers) == ["a", "b"] && answers.filter { $0 == "a" }.count == 5)

            // a fails: every call still succeeds (a read is tried again on b), and a leaves the rotation.
            a.failing.store(true, ordering: .relaxed)
            for _ in 0..<6 { #expect(try await who(downstream) == "b") }
            #expect(downstream.healthyInstances.count == 1)
            // Back: the next health check puts it in again, and it gets its share.
            a.failing.store(false, ordering: .relaxed)
            await downstream.checkHealth()
            #expect(downstream.healthyInstances.count == 2)
            var later: [String] = []
            for _ in 0..<4 { later.append(try await who(downstream)) }
            #expect(later.contains("a") && later.contains("b"))
        }
    }

    @Test func aHangingServiceTimesOutThenTheBreakerFailsFastAndClosesAfterRecovery() async throws {
        try await withTwoInstances({ $0.timeout = .seconds(1) }) { downstream, a, b in
            a.hanging.store(true, ordering: .relaxed)
            b.hanging.store(true, ordering: .relaxed)
            for _ in 0..<3 {
                await #expect(throws: Downstream.Failure.self) { try await who(downstream) }
            }
            #expect(downstream.breaker.state == .open)
            // Open: calls fail at once, without reaching an instance.
            let reached = a.calls.load(ordering: .relaxed) + b.calls.load(ordering: .relaxed)
            do {
                _ = try await who(downstream)
                Issue.record("an open breaker let a call through")
            } catch let failure as Downstream.Failure {
                guard case .open = failure else { Issue.record("expected a fast failure, got \(failure)"); return }
            }
            #expect(a.calls.load(ordering: .relaxed) + b.calls.load(ordering: .relaxed) == reached)

            a.stopHanging()
            b.stopHanging()
            await downstream.checkHealth()
            // Once its pause is over the breaker lets a probe through; until then calls keep failing fast.
            let answer = try await within(.seconds(10), "the breaker to let a probe through") {
                while true {
                    if let answer = try? await who(downstream) { return answer }
                    try await Task.sleep(for: .milliseconds(50))
                }
            }
            #expect(answer == "a" || answer == "b")
            #expect(downstream.breaker.state == .closed)
        }
    }

    @Test func aSlowServiceFillsItsOwnBulkheadOnly() async throws {
        try await withTwoInstances({ $0.concurrency = 2 }) { slow, a, b in
            a.hanging.store(true, ordering: .relaxed)
            b.hanging.store(true, ordering: .relaxed)
            try await withTwoInstances { fast, _, _ in
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for _ in 0..<2 { group.addTask { _ = try? await who(slow) } }
                    try await within(.seconds(5), "the slow calls to be in flight") {
                        while slow.bulkhead.occupied < 2 { await Task.yield() }
                    }
                    await #expect(throws: Downstream.Failure.busy(service: "catalog")) { try await who(slow) }
                    // The other service's calls go through while this one's bulkhead is full.
                    #expect(try await who(fast) != "")
                    #expect(slow.bulkhead.occupied == 2)
                    a.stopHanging()
                    b.stopHanging()
                    group.cancelAll()
                }
            }
        }
    }
}

@Suite("Downstream services: instances discovered through DNS")
struct DiscoveryTests {
    /// A URL naming a host stands for the addresses DNS answers for it (`localhost`: 127.0.0.1 from /etc/hosts, the
    /// resolver this process uses); calls go to the address, and health checks follow it.
    @Test func aNameStandsForItsAddresses() async throws {
        let instance = FakeInstance("a")
        try await instance.application().test(.live) { client in
            let port = try #require(client.port)
            let downstream = Downstream(.init(name: "catalog", instances: ["http://localhost:\(port)"], connectTimeout: .seconds(5)),
                                        identity: nil, logger: TestDatabase.logger)
            await downstream.discover()
            #expect(downstream.instances == ["http://127.0.0.1:\(port)"])
            // Found, not yet checked: out of rotation until its health check passes.
            #expect(downstream.healthyInstances.isEmpty)
            // A check waits a second at most: on a loaded machine the first may not pass, so look until one has.
            try await within(.seconds(20), "a passing health check") {
                while downstream.healthyInstances.isEmpty { await downstream.checkHealth() }
            }
            #expect(downstream.healthyInstances == ["http://127.0.0.1:\(port)"])
            #expect(try await who(downstream) == "a")
            try await downstream.shutdown()
        }
    }

    /// A name that does not resolve (yet) stands for itself, and fails its checks like a dead instance; an address is
    /// never looked up.
    @Test func aNameThatDoesNotResolveStaysAsItIsAndAnAddressIsOneInstance() async throws {
        let downstream = Downstream(.init(name: "catalog", instances: ["http://no-such-service.invalid:8081", "http://127.0.0.1:9", "http://[::1]:9"]),
                                    identity: nil, logger: TestDatabase.logger)
        await downstream.discover()
        #expect(downstream.instances == ["http://no-such-service.invalid:8081", "http://127.0.0.1:9", "http://[::1]:9"])
        await downstream.checkHealth()
        #expect(downstream.healthyInstances.isEmpty)
        try await downstream.shutdown()
    }
}
