import Crypto
import Essentials
import EventStore
import Foundation
import GRDB
#if canImport(Glibc)
import Glibc
#endif

/// A view's folder, `<directory>/<name>/`: one SQLite file per generation (`g1.sqlite`, `g2.sqlite`, …) and a
/// pointer, `current`, naming the generation that serves. A rebuild writes the next generation beside the
/// serving one and then replaces the pointer by an atomic rename: no SQLite file is ever renamed over another
/// (that could pair a new database with an old one's WAL).
struct ViewFiles: Sendable {
    let folder: URL

    init(directory: URL, name: String) throws {
        folder = directory.appendingPathComponent(name, isDirectory: true)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }

    func path(_ generation: Int) -> String { folder.appendingPathComponent("g\(generation).sqlite").path }

    var pointer: URL { folder.appendingPathComponent("current") }

    /// The generation the pointer names; `nil` before the first.
    func current() -> Int? {
        guard let text = try? String(contentsOf: pointer, encoding: .utf8) else { return nil }
        return Int(text.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    func setCurrent(_ generation: Int) throws {
        let temporary = folder.appendingPathComponent("current.\(getpid()).tmp")
        try Data("\(generation)\n".utf8).write(to: temporary)
        guard rename(temporary.path, pointer.path) == 0 else {
            throw ViewError.io("cannot replace \(pointer.path): \(String(cString: strerror(errno)))")
        }
    }

    func generations() -> [Int] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        return names.compactMap { name in
            guard name.hasPrefix("g"), name.hasSuffix(".sqlite") else { return nil }
            return Int(name.dropFirst().dropLast(".sqlite".count))
        }.sorted()
    }

    func remove(_ generation: Int) {
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path(generation) + suffix) }
    }

    /// An exclusive lock on rebuilding this view, across processes; released when the process dies too.
    func lockForRebuild() throws -> FileLock {
        let path = folder.appendingPathComponent("rebuild.lock").path
        let descriptor = open(path, O_CREAT | O_RDWR, 0o644)
        guard descriptor >= 0 else { throw ViewError.io("cannot open \(path): \(String(cString: strerror(errno)))") }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            close(descriptor)
            throw ViewError.rebuildRunning(folder.lastPathComponent)
        }
        return FileLock(descriptor: descriptor)
    }
}

struct FileLock: Sendable {
    let descriptor: Int32
    func release() {
        flock(descriptor, LOCK_UN)
        close(descriptor)
    }
}

public enum ViewError: Error, Equatable, CustomStringConvertible {
    case rebuildRunning(String)
    case corrupt(String)
    case io(String)

    public var description: String {
        switch self {
        case .rebuildRunning(let name): "a rebuild of \(name) is already running"
        case .corrupt(let reason): "the rebuilt view failed its integrity check: \(reason)"
        case .io(let reason): reason
        }
    }
}

/// One generation's SQLite file: its schema, checkpoint and content.
enum ViewFile {
    /// Opens (or creates, with the projection's schema and a checkpoint at the start) the file at `path`.
    static func open(_ path: String, _ projection: any Projection) throws -> DatabasePool {
        var configuration = Configuration()
        // Another process (a rebuild, the service's projector) may be writing: wait for it rather than fail.
        configuration.busyMode = .timeout(10)
        let pool = try DatabasePool(path: path, configuration: configuration)
        if try pool.read({ try $0.tableExists("projection_state") }) { return pool }
        try pool.write { db in
            guard try !db.tableExists("projection_state") else { return }
            try db.execute(sql: """
                CREATE TABLE projection_state (
                    name TEXT PRIMARY KEY, version INTEGER NOT NULL,
                    transaction_id INTEGER NOT NULL, global_position INTEGER NOT NULL, updated_at TEXT)
                """)
            try projection.createSchema(db)
            try db.execute(sql: "INSERT INTO projection_state VALUES (?, ?, 0, 0, NULL)", arguments: [projection.name, projection.version])
        }
        return pool
    }

    static func version(_ db: Database) throws -> Int? {
        try Int.fetchOne(db, sql: "SELECT version FROM projection_state")
    }

    static func checkpoint(_ db: Database) throws -> Position {
        let row = try Row.fetchOne(db, sql: "SELECT transaction_id, global_position FROM projection_state")
        return Position(transactionID: row?["transaction_id"] ?? 0, globalPosition: row?["global_position"] ?? 0)
    }

    /// Applies the events of `batch` after the file's own checkpoint, and moves the checkpoint, in one
    /// transaction: an event is never applied twice to a file, whoever delivers it. Returns the new checkpoint.
    static func apply<P: Projection>(_ batch: PreparedBatch<P>, _ projection: P, to pool: DatabasePool) async throws -> Position {
        try await pool.write { db in
            let checkpoint = try checkpoint(db)
            guard let last = batch.last, last > checkpoint else { return checkpoint }
            try projection.apply(batch: batch.events.compactMap { $0.position > checkpoint ? $0.prepared : nil }, to: db)
            try db.execute(
                sql: "UPDATE projection_state SET transaction_id = ?, global_position = ?, updated_at = ?",
                arguments: [last.transactionID, last.globalPosition, Timestamp.iso8601(Date())])
            return last
        }
    }

    /// Prepares `batch` and applies it.
    static func apply<P: Projection>(_ batch: [RecordedEvent], _ projection: P, to pool: DatabasePool) async throws -> Position {
        try await apply(try PreparedBatch(batch, for: projection), projection, to: pool)
    }

    static func check(_ pool: DatabasePool) async throws {
        let result = try await pool.read { try String.fetchOne($0, sql: "PRAGMA quick_check") }
        guard result == "ok" else { throw ViewError.corrupt(result ?? "no answer") }
    }

    /// A checksum of the content: every row of every table but the checkpoint and full-text indexes (whose
    /// internals depend on the order of writes), in a stable order, so two views of the same events have the
    /// same checksum however they were built.
    static func checksum(_ db: Database) throws -> String {
        var hasher = SHA256()
        let virtual = try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table' AND sql LIKE 'CREATE VIRTUAL TABLE%'")
        let tables = try String.fetchAll(db, sql: """
            SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name <> 'projection_state' ORDER BY name
            """).filter { table in !virtual.contains { table == $0 || table.hasPrefix($0 + "_") } }
        for table in tables {
            let columns = try db.columns(in: table).count
            let order = (1...max(columns, 1)).map(String.init).joined(separator: ", ")
            hasher.update(data: Array("table \(table)\n".utf8))
            let rows = try Row.fetchCursor(db, sql: "SELECT * FROM \(table.quotedDatabaseIdentifier) ORDER BY \(order)")
            while let row = try rows.next() {
                hasher.update(data: Array("\(row.databaseValues.map(\.description))\n".utf8))
            }
        }
        return hasher.finalize().map { String(format: "%02x", $0) }.joined()
    }
}
