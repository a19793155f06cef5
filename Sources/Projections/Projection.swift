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
    /// Whether ``prepare(_:)`` looks at events' metadata; by default not, and events are read without it.
    var readsMetadata: Bool { get }
    /// What ``apply(_:to:)`` takes: an event made ready to apply (decoded), by ``prepare(_:)``.
    associatedtype Prepared: Sendable = RecordedEvent
    /// Creates its tables in a new, empty database.
    func createSchema(_ db: Database) throws
    /// Makes an event ready to apply (decodes it), outside the write transaction: a rebuild prepares the
    /// next batch while the current one is written, so decoding and writing use two cores.
    func prepare(_ event: RecordedEvent) throws -> Prepared
    /// Applies one prepared event, inside its batch's transaction.
    func apply(_ event: Prepared, to db: Database) throws
    /// Applies a batch's events in order, inside its transaction. By default one by one; a projection may
    /// write less by looking at the batch as a whole (each row once, with what it became by the batch's end).
    func apply(batch: [Prepared], to db: Database) throws
}

extension Projection {
    public var readsMetadata: Bool { false }

    public func apply(batch: [Prepared], to db: Database) throws {
        for event in batch { try apply(event, to: db) }
    }
}

extension Projection where Prepared == RecordedEvent {
    public func prepare(_ event: RecordedEvent) throws -> RecordedEvent { event }
}

/// A batch of events made ready for a projection: each event's position, and what ``Projection/prepare(_:)``
/// made of it if the projection reads its type.
struct PreparedBatch<P: Projection>: Sendable {
    let events: [(position: Position, prepared: P.Prepared?)]

    init(_ batch: [RecordedEvent], for projection: P) throws {
        let types = projection.eventTypes
        events = try batch.map { event in (event.position, types.contains(event.type) ? try projection.prepare(event) : nil) }
    }

    private init(events: [(position: Position, prepared: P.Prepared?)]) { self.events = events }

    var last: Position? { events.last?.position }

    /// The events up to `position`.
    func prefix(through position: Position) -> PreparedBatch {
        PreparedBatch(events: Array(events.prefix { $0.position <= position }))
    }
}
