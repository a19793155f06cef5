import EventStore
import GRDB

/// A read model: a SQLite view fed by one context's events.
///
/// Its name is its file's name and never changes. Its version says what its schema and `apply` mean: bump it
/// and the view is rebuilt from the first event.
public protocol Projection: Sendable {
    /// Stable: the file name (`<name>.sqlite`) and the checkpoint's key.
    var name: String { get }
    /// Bump when the schema or the meaning of ``apply(_:to:)`` changes.
    var version: Int { get }
    /// The event types it reads; other events only move its position.
    var eventTypes: Set<String> { get }
    /// Creates its tables in a new, empty database.
    func createSchema(_ db: Database) throws
    /// Applies one event, inside its batch's transaction.
    func apply(_ event: RecordedEvent, to db: Database) throws
}
