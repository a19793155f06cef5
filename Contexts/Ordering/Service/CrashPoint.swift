import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Fault injection for the crash tests: `SHOP_CRASH_AT=<point>` makes the process kill itself (SIGKILL, as
/// `kill -9` would) when it reaches that point, for example `after-reserve-stock`: the step was done by the
/// other context, and its result not yet recorded here.
enum CrashPoint {
    static let armed = ProcessInfo.processInfo.environment["SHOP_CRASH_AT"]

    static func reached(_ point: String) {
        guard let armed, armed == point else { return }
        kill(getpid(), SIGKILL)
    }
}
