import Foundation
@testable import Gateway
import Identity
import ServiceClient
import Testing

@Suite("Rate limits, breakers, bulkheads")
struct ResilienceTests {
    let start = ContinuousClock.now

    /// A limiter configured absurdly slow, or a breaker open for long, still answers a `Retry-After` an integer holds:
    /// a day at most, a second at least. A `Duration` of 1e300 seconds crashed the process.
    @Test func retryAfterIsAWholeNumberOfSecondsFromOneToADay() {
        let slow = RateLimiter(perSecond: 1e-300, burst: 1)
        #expect(slow.take("kim", now: start) == .allowed)
        guard case .limited(let after) = slow.take("kim", now: start) else { Issue.record("not limited"); return }
        #expect(after.retryAfterSeconds == 86_400)
        #expect(Duration.milliseconds(1).retryAfterSeconds == 1 && Duration.seconds(2.5).retryAfterSeconds == 3)
        let problem = Downstream.Failure.open(service: "catalog", retryAfter: .seconds(1e9)).problem
        #expect(problem.headers[.retryAfter] == "86400")
    }

    @Test func aBurstOverTheLimitIsRefusedWithWhenToRetryAndOtherClientsAreUnaffected() {
        let limiter = RateLimiter(perSecond: 2, burst: 3)
        let answers = (0..<4).map { _ in limiter.take("kim", now: start) }
        #expect(answers.prefix(3).allSatisfy { $0 == .allowed })
        #expect(answers.last == .limited(retryAfter: .milliseconds(500)))
        #expect(limiter.take("ann", now: start) == .allowed)
        // Half a second later one token is back, and only one.
        #expect(limiter.take("kim", now: start + .milliseconds(500)) == .allowed)
        #expect(limiter.take("kim", now: start + .milliseconds(500)) != .allowed)
    }

    @Test func idleClientsAreForgotten() {
        let limiter = RateLimiter(perSecond: 10, burst: 10)
        for client in 0..<100 { _ = limiter.take("client-\(client)", now: start) }
        #expect(limiter.trackedClients == 100)
        _ = limiter.take("late", now: start + .seconds(61))
        _ = limiter.take("later", now: start + .seconds(122))
        #expect(limiter.trackedClients <= 2)
    }

    @Test func aBreakerOpensAfterRepeatedFailuresProbesOnceAndClosesOnSuccess() {
        let breaker = CircuitBreaker(failureThreshold: 3, openFor: .seconds(5))
        for _ in 0..<2 {
            #expect(breaker.permission(now: start) == .allowed)
            breaker.record(success: false, now: start)
        }
        #expect(breaker.state == .closed)
        breaker.record(success: false, now: start)
        #expect(breaker.state == .open)
        #expect(breaker.permission(now: start + .seconds(1)) == .rejected(retryAfter: .seconds(4)))
        // After the pause one probe goes through; the others still fail fast.
        #expect(breaker.permission(now: start + .seconds(5)) == .probe)
        #expect(breaker.state == .halfOpen)
        if case .rejected = breaker.permission(now: start + .seconds(5)) {} else { Issue.record("a second call went through half-open") }
        breaker.record(success: false, now: start + .seconds(6))
        #expect(breaker.state == .open)
        #expect(breaker.permission(now: start + .seconds(11)) == .probe)
        breaker.record(success: true, now: start + .seconds(11))
        #expect(breaker.state == .closed && breaker.permission(now: start + .seconds(11)) == .allowed)
    }

    @Test func aSuccessResetsTheFailureCount() {
        let breaker = CircuitBreaker(failureThreshold: 2, openFor: .seconds(5))
        breaker.record(success: false, now: start)
        breaker.record(success: true, now: start)
        breaker.record(success: false, now: start)
        #expect(breaker.state == .closed)
    }

    @Test func aFullBulkheadRefusesAtOnceUntilAPlaceIsFree() {
        let bulkhead = Bulkhead(capacity: 2)
        #expect(bulkhead.enter() && bulkhead.enter())
        #expect(!bulkhead.enter())
        bulkhead.leave()
        #expect(bulkhead.enter() && bulkhead.occupied == 2)
    }
}

@Suite("Verified tokens, kept")
struct VerifiedTokensTests {
    @Test func aKeptTokenStillExpiresAndAnotherKeysTokenIsStillRefused() async throws {
        let signer = try await TokenSigner(secret: Data(repeating: 7, count: 32))
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        let kept = VerifiedTokens(capacity: 2)
        let token = try await signer.issue(Claims(subject: "kim", role: .customer, issuedAt: now, expiresAt: now.addingTimeInterval(60)))
        #expect(try await kept.claims(of: token, signer, now: now).subject == "kim")
        #expect(try await kept.claims(of: token, signer, now: now.addingTimeInterval(30)).subject == "kim")
        await #expect(throws: TokenError.expired(now.addingTimeInterval(60))) { try await kept.claims(of: token, signer, now: now.addingTimeInterval(61)) }
        let other = try await TokenSigner(secret: Data(repeating: 8, count: 32))
            .issue(Claims(subject: "kim", role: .admin, issuedAt: now, expiresAt: now.addingTimeInterval(60)))
        await #expect(throws: TokenError.badSignature) { try await kept.claims(of: other, signer, now: now) }
        for index in 0..<5 {  // past its capacity it starts afresh, and goes on verifying
            let more = try await signer.issue(Claims(subject: "c\(index)", role: .customer, issuedAt: now, expiresAt: now.addingTimeInterval(60)))
            #expect(try await kept.claims(of: more, signer, now: now).subject == "c\(index)")
        }
    }
}
