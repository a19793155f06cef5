/// An aggregate written as three pure functions over values.
///
/// `decide` turns a command into the events it causes (or refuses it with a domain error), `evolve` folds one
/// event into the state, and `initialState` is the state of a stream without events. Time, ids and anything else
/// that varies come in with the command, never from inside `decide`, so a decider is deterministic and tested
/// with plain given/when/then:
///
/// ```swift
/// let state = Order.replay([.placed(.sample), .shipped(.sample)])
/// #expect(throws: OrderError.alreadyShipped) { try Order.decide(.cancel(.sample), state) }
/// ```
///
/// The event store's `CommandHandler` runs a decider against a stream: read, fold, decide, append with the
/// version read, retry on a concurrent write.
public protocol Decider {
    associatedtype Command: Sendable
    associatedtype Event: Sendable
    associatedtype State: Sendable
    associatedtype Failure: Error

    static var initialState: State { get }
    static func decide(_ command: Command, _ state: State) throws(Failure) -> [Event]
    /// Takes the state as `consuming`: it changes that value in place and gives it back, so folding a stream whose
    /// state holds collections (a product's committed reservations) copies none of them per event.
    static func evolve(_ state: consuming State, _ event: Event) -> State
}

extension Decider {
    /// The state after `events`, starting from ``initialState``.
    public static func replay(_ events: some Sequence<Event>) -> State {
        replay(events, from: initialState)
    }

    /// The events `command` causes after `history`: given/when/then in one call, for tests.
    public static func decide(_ command: Command, given history: [Event]) throws(Failure) -> [Event] {
        try decide(command, replay(history))
    }

    /// The state after `events`, starting from `state`.
    public static func replay(_ events: some Sequence<Event>, from state: consuming State) -> State {
        // Consumed and given back: the state has one owner at a time, and is changed without being copied.
        for event in events { state = evolve(consume state, event) }
        return state
    }
}
