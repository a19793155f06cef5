import Foundation
import Hummingbird
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
        let router = Router()
        router.get("/hello") { _, _ in "hello" }
        let app = Application(router: router, server: ShopHTTPServer.http1(idleTimeout: .milliseconds(300)),
                              configuration: .init(address: .hostname("127.0.0.1", port: 0)),
                              onServerRunning: { channel in Ports.shared.record(channel.localAddress?.port ?? 0) })
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await app.runService() }
            defer { group.cancelAll() }
            let port = await Ports.shared.next()
            let started = ContinuousClock.now
            let closed = await Self.waitForClose(port: port, sending: "GET /hel")  // half a request, then nothing
            #expect(closed, "the server kept the connection open")
            #expect(ContinuousClock.now - started < .seconds(10))
        }
    }

    /// Connects, sends `text`, and waits (up to 10 s, on a thread of its own) for the server to close the connection.
    static func waitForClose(port: Int, sending text: String) async -> Bool {
        await withCheckedContinuation { continuation in
            Thread.detachNewThread {
                let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
                defer { close(descriptor) }
                var address = sockaddr_in()
                address.sin_family = sa_family_t(AF_INET)
                address.sin_addr.s_addr = inet_addr("127.0.0.1")
                address.sin_port = in_port_t(UInt16(port).bigEndian)
                let connected = withUnsafePointer(to: &address) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
                }
                guard connected else { return continuation.resume(returning: false) }
                _ = text.withCString { send(descriptor, $0, strlen($0), 0) }
                var timeout = timeval(tv_sec: 10, tv_usec: 0)
                setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
                var buffer = [UInt8](repeating: 0, count: 1024)
                var received = recv(descriptor, &buffer, buffer.count, 0)
                while received > 0 { received = recv(descriptor, &buffer, buffer.count, 0) }  // an answer (a 408, say), then the close
                continuation.resume(returning: received == 0)
            }
        }
    }
}

/// The port a test server was given, for the test to connect to.
actor Ports {
    static let shared = Ports()
    private var ports: [Int] = []
    private var waiting: [CheckedContinuation<Int, Never>] = []

    nonisolated func record(_ port: Int) { Task { await self.add(port) } }

    private func add(_ port: Int) {
        if waiting.isEmpty { ports.append(port) } else { waiting.removeFirst().resume(returning: port) }
    }

    func next() async -> Int {
        if !ports.isEmpty { return ports.removeFirst() }
        return await withCheckedContinuation { waiting.append($0) }
    }
}
