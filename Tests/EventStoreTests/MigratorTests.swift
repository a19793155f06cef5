import EventStore
import Foundation
import PostgresNIO
import TestSupport
import Testing

@Suite("Migrations")
struct MigratorTests {
    /// A folder of migration files of its own, in a temporary directory.
    struct Files {
        let directory: URL

        init(_ files: [String: String]) throws {
            directory = FileManager.default.temporaryDirectory.appendingPathComponent("migrations-\(UUID())", isDirectory: true)
            try FileManager.default.createDirectory(at: directory.appendingPathComponent("t"), withIntermediateDirectories: true)
            for (name, sql) in files { try write(name, sql) }
        }

        func write(_ name: String, _ sql: String) throws {
            try Data(sql.utf8).write(to: directory.appendingPathComponent("t/\(name)"))
        }

        var migrator: Migrator { get throws { try Migrator(directory: directory, folders: ["t"]) } }
    }

    func tables(_ url: DatabaseURL) async throws -> [String] {
        try await TestDatabase.withConnection(url) { connection in
            var names: [String] = []
            let rows = try await connection.query(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename", logger: TestDatabase.logger)
            for try await name in rows.decode(String.self) { names.append(name) }
            return names
        }
    }

    @Test func appliesInOrderOnceAndRecordsChecksums() async throws {
        let files = try Files([
            "0001_first.sql": "CREATE TABLE a (x int); CREATE TABLE b (y int);",
            "0002_second.sql": "ALTER TABLE a ADD COLUMN z text; CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1; $$;",
        ])
        let url = try await TestDatabase.create(migrated: false)
        let applied = try await files.migrator.migrate(url, logger: TestDatabase.logger)
        #expect(applied.map(\.description) == ["t/0001_first.sql", "t/0002_second.sql"])
        #expect(try await tables(url) == ["a", "b", "schema_migrations"])
        // Running again changes nothing.
        #expect(try await files.migrator.migrate(url, logger: TestDatabase.logger).isEmpty)
        // A new file is applied on the next run.
        try files.write("0003_third.sql", "CREATE TABLE c (x int);")
        #expect(try await files.migrator.migrate(url, logger: TestDatabase.logger).map(\.version) == [3])
        #expect(try await tables(url) == ["a", "b", "c", "schema_migrations"])
    }

    @Test func anAppliedFileThatWasEditedIsRefused() async throws {
        let files = try Files(["0001_first.sql": "CREATE TABLE a (x int);"])
        let url = try await TestDatabase.create(migrated: false)
        try await files.migrator.migrate(url, logger: TestDatabase.logger)
        try files.write("0001_first.sql", "CREATE TABLE a (x bigint);")
        try files.write("0002_second.sql", "CREATE TABLE b (x int);")
        let error = await #expect(throws: MigrationError.self) { try await files.migrator.migrate(url, logger: TestDatabase.logger) }
        guard case .edited(let name, let database, _, _)? = error else { Issue.record("expected .edited, got \(String(describing: error))"); return }
        #expect(name == "t/0001_first.sql" && database == url.database)
        #expect("\(error!)".contains("was edited after it was applied"))
        // Nothing after it was applied either.
        #expect(try await tables(url) == ["a", "schema_migrations"])
    }

    @Test func aFailingMigrationLeavesNothingOfItselfBehind() async throws {
        let files = try Files([
            "0001_first.sql": "CREATE TABLE a (x int);",
            "0002_broken.sql": "CREATE TABLE b (x int); CREATE TABLE a (y int);",
        ])
        let url = try await TestDatabase.create(migrated: false)
        let error = await #expect(throws: MigrationError.self) { try await files.migrator.migrate(url, logger: TestDatabase.logger) }
        guard case .failed(let name, _, let reason)? = error else { Issue.record("expected .failed, got \(String(describing: error))"); return }
        #expect(name == "t/0002_broken.sql")
        #expect(reason.contains("already exists"))
        #expect(try await tables(url) == ["a", "schema_migrations"])
        // Once fixed, it applies.
        try files.write("0002_broken.sql", "CREATE TABLE b (x int);")
        #expect(try await files.migrator.migrate(url, logger: TestDatabase.logger).map(\.version) == [2])
    }

    @Test func migratorsRunningAtOnceApplyEachFileOnce() async throws {
        let files = try Files([
            "0001_first.sql": "CREATE TABLE a (x int);",
            "0002_second.sql": "CREATE TABLE b (x int); SELECT pg_sleep(0.05);",
            "0003_third.sql": "CREATE TABLE c (x int);",
        ])
        let url = try await TestDatabase.create(migrated: false)
        let migrator = try files.migrator
        let applied = try await withThrowingTaskGroup(of: [Int].self) { group in
            for _ in 0..<4 {
                group.addTask { try await migrator.migrate(url, logger: TestDatabase.logger).map(\.version) }
            }
            return try await group.reduce(into: []) { $0 += $1 }
        }
        #expect(applied.sorted() == [1, 2, 3])
        #expect(try await tables(url) == ["a", "b", "c", "schema_migrations"])
    }

    @Test func outOfOrderAndMisnamedFilesAreRefused() async throws {
        let files = try Files(["0002_second.sql": "CREATE TABLE b (x int);"])
        let url = try await TestDatabase.create(migrated: false)
        try await files.migrator.migrate(url, logger: TestDatabase.logger)
        try files.write("0001_first.sql", "CREATE TABLE a (x int);")
        await #expect(throws: MigrationError.outOfOrder("t/0001_first.sql", database: url.database, newestApplied: 2)) {
            try await files.migrator.migrate(url, logger: TestDatabase.logger)
        }
        let misnamed = try Files(["1_Bad Name.sql": "SELECT 1;"])
        #expect(throws: MigrationError.badFileName("t/1_Bad Name.sql")) { try misnamed.migrator }
        let twice = try Files(["0001_a.sql": "SELECT 1;", "0001_b.sql": "SELECT 1;"])
        #expect(throws: MigrationError.self) { try twice.migrator }
    }

    @Test func theProjectsOwnMigrationsApply() async throws {
        let url = try await TestDatabase.create(migrated: false)
        let migrator = try Migrator(directory: TestDatabase.migrations, folders: ["eventstore", "catalog"])
        #expect(try await migrator.migrate(url, logger: TestDatabase.logger).isEmpty == false)
        #expect(try await migrator.migrate(url, logger: TestDatabase.logger).isEmpty)
        #expect(try await tables(url).contains("events"))
    }
}
