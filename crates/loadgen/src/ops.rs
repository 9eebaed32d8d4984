//! Owns the GraphQL documents the scenarios send (kept in one place so a
//! schema change is one edit; `schema/schema.graphql` is the reference).

/// Customer ids from the directory, a page at a time.
pub const CUSTOMERS: &str = "query($after: String) { customers(first: 200, after: $after) { edges { node { id } } pageInfo { hasNextPage endCursor } } }";

/// Agents with any activity (the leaderboard over all time).
pub const AGENTS: &str = "{ leaderboard(from: \"2000-01-01T00:00:00.000Z\", to: \"2100-01-01T00:00:00.000Z\", first: 200) { agentId } }";

/// One timeline page of 50 entries.
pub const TIMELINE_PAGE: &str = "query($id: ID!, $after: String) { customer(id: $id) { timeline(first: 50, after: $after, newestFirst: true) { edges { cursor node { kind at channel summary actor } } pageInfo { hasNextPage endCursor } } } }";

/// Records an interaction.
pub const RECORD_INTERACTION: &str = "mutation($input: RecordInteractionInput!) { recordInteraction(input: $input) { position interaction { id } } }";

/// Opens a case.
pub const OPEN_CASE: &str =
    "mutation($input: OpenCaseInput!) { openCase(input: $input) { position case { id version } } }";

/// Gives a case its first response.
pub const RESPOND: &str = "mutation($input: RespondToCaseInput!) { respondToCase(input: $input) { position case { id version } } }";

/// Resolves a case.
pub const RESOLVE: &str = "mutation($input: ResolveCaseInput!) { resolveCase(input: $input) { position case { id version } } }";

/// A case's current version (after a conflict).
pub const CASE_VERSION: &str = "query($id: ID!) { case(id: $id) { version } }";

/// A page of the workspace's log.
pub const ALL_EVENTS: &str = "query($from: Int!) { allEvents(fromPosition: $from, first: 200) { events { position eventType recordedAt hash } } }";

/// One customer's timeline as it grows, for subscribers.
pub const TIMELINE_UPDATED: &str =
    "subscription($customer: ID!) { timelineUpdated(customerId: $customer) { totalCount entries { at } } }";

/// A supervisor's queue screen: cases as they change, with the times of the changes the load
/// tool makes (opened, first response, resolved).
pub const ESCALATION_CHANGED: &str =
    "subscription { escalationChanged { eventType case { openedAt firstResponseAt resolvedAt } } }";

/// The log tail for subscribers.
pub const EVENT_APPENDED: &str =
    "subscription($from: Int) { eventAppended(fromPosition: $from) { position recordedAt } }";
