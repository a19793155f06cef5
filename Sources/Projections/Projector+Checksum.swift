import Crypto
import GRDB

extension Projector {
    /// A checksum of the view's content: every row of every table but the checkpoint, in a stable order, so
    /// two views of the same events have the same checksum however they were built.
    public func contentChecksum() async throws -> String {
        try await database.read { db in
            var hasher = SHA256()
            let tables = try String.fetchAll(db, sql: """
                SELECT name FROM sqlite_master
                WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name <> 'projection_state' AND sql NOT LIKE 'CREATE VIRTUAL TABLE%'
                  AND name NOT IN (SELECT name || suffix FROM sqlite_master, (SELECT '_data' AS suffix UNION SELECT '_idx' UNION SELECT '_content'
                                   UNION SELECT '_docsize' UNION SELECT '_config') WHERE sql LIKE 'CREATE VIRTUAL TABLE%')
                ORDER BY name
                """)
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
}
