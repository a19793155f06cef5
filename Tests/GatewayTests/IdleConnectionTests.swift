import Foundation
import Hummingbird
import HummingbirdCore
import ServiceKit
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite("Idle connections")
struct IdleConnectionTests {
    /// A client that opens a connection and sends nothing (or stops halfway through a request) is cut off after the
    /// servers' idle timeout: such connections used to be held for ever, one slow client's worth of capacity each.
    @Test(.timeLimit(.minutes(1)))
    func aConnectionThatSendsNothingIsClosed() async throws {
        try await withHelloServer(ShopHTTPServer.http1(idleTimeout: .milliseconds(300))) { port in
            let started = ContinuousClock.now
            let closed = await Self.waitForClose(port: port, sending: "GET /hel")  // half a request, then nothing
            #expect(closed, "the server kept the connection open")
            #expect(ContinuousClock.now - started < .seconds(10))
        }
    }

    /// Connects, sends `text`, and waits (up to 10 s, on a thread of its own) for the server to close the connection.
    static func waitForClose(port: Int, sending text: String) async -> Bool {
        await exchange(port: port, sending: text).closed
    }

    /// A socket connected to `port` on the loopback address, or `nil`.
    static func connected(to port: Int) -> Int32? {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
        guard connected else {
            close(descriptor)
            return nil
        }
        return descriptor
    }

    /// Connects, sends `text`, and reads until the server closes the connection (or 10 s pass): whether it closed,
    /// and what it answered.
    static func exchange(port: Int, sending text: String) async -> (closed: Bool, answer: String) {
        await withCheckedContinuation { continuation in
            Thread.detachNewThread {
                guard let descriptor = IdleConnectionTests.connected(to: port) else { return continuation.resume(returning: (false, "")) }
                defer { close(descriptor) }
                _ = text.withCString { send(descriptor, $0, strlen($0), 0) }
                var timeout = timeval(tv_sec: 10, tv_usec: 0)
                setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
                var answer = [UInt8](), buffer = [UInt8](repeating: 0, count: 4096)
                var received = recv(descriptor, &buffer, buffer.count, 0)
                while received > 0 {  // an answer (a 408, say), then the close
                    answer += buffer[0..<received]
                    received = recv(descriptor, &buffer, buffer.count, 0)
                }
                continuation.resume(returning: (received == 0, String(decoding: answer, as: UTF8.self)))
            }
        }
    }
}

@Suite("Slow requests")
struct SlowRequestTests {
    /// A client that sends its request a header line at a time, never finishing it, is answered 408 and cut off once
    /// the read timeout has passed: the idle timeout never fired for it, since it was never idle.
    @Test(.timeLimit(.minutes(1)))
    func aRequestThatTricklesInIsCutOffAtTheReadTimeout() async throws {
        try await withHelloServer(ShopHTTPServer.http1(idleTimeout: .seconds(30), readTimeout: .seconds(1))) { port in
            let started = ContinuousClock.now
            let (closed, answer) = await Self.trickle(port: port)
            #expect(closed && answer.hasPrefix("HTTP/1.1 408 Request Timeout\r\n") && answer.contains(#""rule":"request-timeout""#), "\(answer)")
            #expect(ContinuousClock.now - started < .seconds(8))
            // A request that arrives in time is answered, on a connection of its own.
            let good = await IdleConnectionTests.exchange(port: port, sending: "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            #expect(good.answer.hasPrefix("HTTP/1.1 200 OK"))
        }
    }

    /// Sends a request's first line, then a header line every 200 ms (for 10 s at most), until the server closes the
    /// connection: whether it did, and what it answered.
    static func trickle(port: Int) async -> (closed: Bool, answer: String) {
        await withCheckedContinuation { continuation in
            Thread.detachNewThread {
                guard let descriptor = IdleConnectionTests.connected(to: port) else { return continuation.resume(returning: (false, "")) }
                defer { close(descriptor) }
                var timeout = timeval(tv_sec: 0, tv_usec: 200_000)
                setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
                var answer = [UInt8](), buffer = [UInt8](repeating: 0, count: 4096)
                _ = "GET /hello HTTP/1.1\r\nHost: x\r\n".withCString { send(descriptor, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
                for line in 0..<50 {
                    let received = recv(descriptor, &buffer, buffer.count, 0)
                    if received == 0 { return continuation.resume(returning: (true, String(decoding: answer, as: UTF8.self))) }
                    if received > 0 { answer += buffer[0..<received]; continue }
                    _ = "X-Line-\(line): still coming\r\n".withCString { send(descriptor, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
                }
                continuation.resume(returning: (false, String(decoding: answer, as: UTF8.self)))
            }
        }
    }
}

@Suite("Requests the HTTP parser refuses")
struct MalformedRequestTests {
    /// A malformed request line or header, or headers over the server's limits, get a problem document (they got an
    /// empty 400), and the connection is closed; a good request on a new connection is answered as usual.
    @Test(.timeLimit(.minutes(1)))
    func aRequestTheParserRefusesGetsAProblemDocument() async throws {
        try await withHelloServer(ShopHTTPServer.http1()) { port in
            let cases = [
                ("GET /hello HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n", "400 Bad Request", "malformed-http"),
                ("GET /hello HTTP/1.1\r\nHost: x\r\nX-Big: \(String(repeating: "a", count: 100_000))\r\n\r\n", "431 Request Header Fields Too Large",
                 "headers-too-large"),
                ("BREW /hello HTCPCP/1.0\r\n\r\n", "400 Bad Request", "malformed-http"),
                ("GET /hello HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", "400 Bad Request", "malformed-http"),
            ]
            for (request, status, rule) in cases {
                let (closed, answer) = await IdleConnectionTests.exchange(port: port, sending: request)
                #expect(closed && answer.hasPrefix("HTTP/1.1 \(status)\r\n"), "\(request.prefix(40)): \(answer.prefix(200))")
                #expect(answer.contains("application/problem+json") && answer.contains(#""rule":"\#(rule)""#), "\(answer.prefix(300))")
            }
            let good = await IdleConnectionTests.exchange(port: port, sending: "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            #expect(good.answer.hasPrefix("HTTP/1.1 200 OK") && good.answer.hasSuffix("hello"))
        }
    }
}

/// Runs a server with `server`'s settings that answers `GET /hello`, and `body` with its port.
func withHelloServer(_ server: HTTPServerBuilder, _ body: @escaping @Sendable (Int) async throws -> Void) async throws {
    let router = Router()
    router.get("/hello") { _, _ in "hello" }
    let (ports, port) = AsyncStream.makeStream(of: Int.self)
    let app = Application(router: router, server: server, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
                          onServerRunning: { channel in port.yield(channel.localAddress?.port ?? 0) })
    try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await app.runService() }
        defer { group.cancelAll() }
        var iterator = ports.makeAsyncIterator()
        let port = try #require(await iterator.next())
        try await body(port)
    }
}
