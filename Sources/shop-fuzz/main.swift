// Fuzz targets for what the shop reads from outside, driven by libFuzzer: `bin/fuzz` builds this (only with
// SHOP_FUZZ=1, into .build-fuzz, with the shop's own modules instrumented) and runs each target. A target must never
// crash, and checks what must hold of every input it is given; SHOP_FUZZ_TARGET names the one to run.
@testable import BillingService
@testable import CatalogService
import Crypto
import Foundation
@testable import Gateway
@testable import Identity
@testable import OrderingService
import ServiceKit
import SharedKernel

/// The targets, by name.
nonisolated(unsafe) let targets: [String: ([UInt8]) -> Void] = ["tokens": Tokens.fuzz, "bodies": Bodies.fuzz, "text": TextChecks.fuzz]

/// What a target found that must not be: a crash, so that libFuzzer keeps the input.
func violated(_ what: @autoclosure () -> String) -> Never {
    fatalError("fuzz: \(what())")
}

/// Runs `body` to its end from libFuzzer's synchronous callback.
func blocking<T: Sendable>(_ body: @escaping @Sendable () async -> T) -> T {
    let result = Box<T>()
    let done = DispatchSemaphore(value: 0)
    Task {
        result.value = await body()
        done.signal()
    }
    done.wait()
    return result.value!
}

final class Box<T>: @unchecked Sendable {  // written by one task before the semaphore, read after it
    var value: T?
}

/// Bearer tokens, customers' and services': any text as a token, and any payload signed with the right key (so that
/// the claims' decoding is reached past the signature). A token that verifies has claims in range, and verifies
/// again once issued anew.
enum Tokens {
    static let key = Data(repeating: 42, count: 32)
    static let signer = blocking { try! await TokenSigner(secret: key) }
    static let catalog = blocking { try! await ServiceIdentity(name: "catalog", secret: key) }

    static func fuzz(_ bytes: [UInt8]) {
        let text = String(decoding: bytes, as: UTF8.self)
        let payload = Data(bytes)
        blocking {
            for token in [text, signed(payload)] {
                if let claims = try? await signer.verify(token, now: Date(timeIntervalSince1970: -1)) {
                    guard claims.expiresAt.timeIntervalSince1970 <= TimeClaim.latestSeconds,
                          let again = try? await signer.issue(claims),
                          (try? await signer.verify(again, now: Date(timeIntervalSince1970: -1))) != nil
                    else { violated("a verified token's claims do not make a token that verifies: \(token)") }
                }
                _ = try? await catalog.caller("Bearer " + token, audience: "catalog", now: Date(timeIntervalSince1970: -1))
            }
        }
    }

    /// `payload` as a token's payload, signed with ``key`` (HS256).
    static func signed(_ payload: Data) -> String {
        func base64URL(_ data: Data) -> String {
            data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
                .replacingOccurrences(of: "=", with: "")
        }
        let body = base64URL(Data(#"{"alg":"HS256","typ":"JWT"}"#.utf8)) + "." + base64URL(payload)
        return body + "." + base64URL(Data(HMAC<SHA256>.authenticationCode(for: Data(body.utf8), using: SymmetricKey(data: key))))
    }
}

/// Request bodies, as the services and the BFF read them: the first byte picks a command's body, the rest is the
/// body. A body is either a value whose text holds no control character, or a problem document with a 4xx status.
enum Bodies {
    static let readers: [@Sendable (Data) throws -> [String]] = [
        { try texts(JSONBody.decode(OrderingAPI.AddItem.self, from: $0)) },
        { try texts(JSONBody.decode(OrderingAPI.Checkout.self, from: $0)) },
        { try texts(JSONBody.decode(OrderingAPI.Reason.self, from: $0)) },
        { try texts(JSONBody.decode(CatalogAPI.AddProduct.self, from: $0), money: { [$0.price] }) },
        { try texts(JSONBody.decode(CatalogAPI.Reserve.self, from: $0)) },
        { try texts(JSONBody.decode(BillingAPI.Authorise.self, from: $0), money: { [$0.amount] }) },
        { try texts(JSONBody.decode(DevelopmentLogin.Credentials.self, from: $0)) },
    ]

    static func fuzz(_ bytes: [UInt8]) {
        guard let first = bytes.first else { return }
        let body = Data(bytes.dropFirst())
        do {
            for text in try readers[Int(first) % readers.count](body) where ControlCharacters.contained(in: text) {
                violated("a body was taken with a control character in \(text.debugDescription)")
            }
        } catch let problem as Problem {
            Problems.check(problem)
        } catch {
            violated("a body was refused with \(error), not a problem document")
        }
    }

    /// The strings of `value` (each of its members, encoded), after its amounts are read as money.
    static func texts<T: Encodable>(_ value: T, money: (T) -> [MoneyBody] = { _ in [] }) throws -> [String] {
        for amount in money(value) { _ = try amount.money() }
        let encoded = try JSONSerialization.jsonObject(with: JSONEncoder().encode(value), options: [.fragmentsAllowed])
        return strings(in: encoded)
    }
}

func strings(in value: Any) -> [String] {
    switch value {
    case let text as String: [text]
    case let array as [Any]: array.flatMap(strings(in:))
    case let object as [String: Any]: object.keys.map { $0 } + object.values.flatMap(strings(in:))
    default: []
    }
}

enum Problems {
    /// A refusal is a client error whose document is a JSON object naming its status and rule.
    static func check(_ problem: Problem) {
        guard (400..<500).contains(problem.status.code) else { violated("a body was refused with \(problem.status)") }
        guard let document = try? JSONSerialization.jsonObject(with: problem.body) as? [String: Any],
              document["status"] as? Int == problem.status.code, document["rule"] as? String == problem.rule
        else { violated("the problem document of \(problem.rule) is not what it says: \(String(decoding: problem.body, as: UTF8.self))") }
    }
}

/// The checks of text from outside, against what they check: `Text.jsonHasControlCharacter`'s scan of JSON bytes
/// agrees with the strings JSON decoding finds (for JSON that decodes), and path and query text is refused exactly
/// when it holds a control character.
enum TextChecks {
    static func fuzz(_ bytes: [UInt8]) {
        let data = Data(bytes)
        // JSON that decodes, as UTF-8 (a NUL in the first four bytes makes the decoder read UTF-16 or UTF-32): the scan
        // of the value encoded again (what the services scan) agrees with its strings, and the scan of its bytes misses
        // none (it may find more: a member a later one of the same name replaces).
        if String(validating: bytes, as: UTF8.self) != nil, !bytes.prefix(4).contains(0),
           let decoded = try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed]) {
            let truth = strings(in: decoded).contains { ControlCharacters.contained(in: $0) }
            if truth, !Text.jsonHasControlCharacter(data) {
                violated("the scan misses the control character of \(String(decoding: bytes, as: UTF8.self).debugDescription)")
            }
            if let again = try? JSONSerialization.data(withJSONObject: decoded, options: [.fragmentsAllowed]),
               Text.jsonHasControlCharacter(again) != truth {
                violated("the scan of the value encoded again says \(!truth), for \(String(decoding: again, as: UTF8.self).debugDescription)")
            }
        }
        let text = String(decoding: bytes, as: UTF8.self)
        guard Text.hasControlCharacter(text) == text.unicodeScalars.contains(where: ControlCharacters.isControl) else {
            violated("hasControlCharacter disagrees on \(text.debugDescription)")
        }
        _ = ControlCharacters.escaped(text)
        Problems.check(Problem.badRequest("fuzz", text))
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
func testOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    target(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}

nonisolated(unsafe) var target: ([UInt8]) -> Void = { _ in }

@_silgen_name("LLVMFuzzerRunDriver")
func runDriver(
    _ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
    _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt
) -> CInt

// libFuzzer's driver, on the target named by SHOP_FUZZ_TARGET.
guard let chosen = targets[ProcessInfo.processInfo.environment["SHOP_FUZZ_TARGET"] ?? ""] else {
    FileHandle.standardError.write(Data("shop-fuzz: SHOP_FUZZ_TARGET must be one of \(targets.keys.sorted().joined(separator: ", "))\n".utf8))
    exit(2)
}
target = chosen
var argumentCount = CommandLine.argc, argumentValues = CommandLine.unsafeArgv
exit(runDriver(&argumentCount, &argumentValues, testOneInput))
