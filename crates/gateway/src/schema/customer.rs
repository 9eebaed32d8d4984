//! Customers: the `Customer` type (folded from its stream, so it is exactly what the log says),
//! its timeline as a Relay connection over the timeline projection (or over a temporary
//! as-of tree), and the queries `customer`, `customerByReference`, `customerByContact` and
//! `customers`.

use std::sync::Arc;

use async_graphql::{ComplexObject, Context, Enum, ErrorExtensions, Object, SimpleObject, ID};
use sijil_domain as d;
use sijil_domain::customer::{Customer, CustomerAggregate};
use sijil_store::projections::directory::{self, DirectoryEntry, PageQuery};
use sijil_store::projections::timeline::{self, TimelineEntry, TimelineQuery};

use crate::auth::Permission;
use crate::context::{page_size, projection_error, shared, store_error, workspace, Need, Shared};
use crate::error::ApiError;
use crate::schema::positions;
use crate::schema::timeline_edges::TimelineEdges;
use crate::schema::types::{parse_id, Channel, ContactKind, ContactPoint, EntryKind, PageInfo};
use crate::time::DateTime;

/// Entries per timeline page when neither `first` nor `last` is given.
const DEFAULT_TIMELINE_PAGE: usize = 50;

/// Where a customer's timeline is read from.
#[derive(Clone)]
pub enum TimelineSource {
    /// The live timeline projection.
    Live,
    /// A timeline rebuilt into a temporary tree, as it stood at a past position.
    AsOf(Arc<crate::schema::audit::AsOfTimeline>),
}

/// A customer as their stream says.
#[derive(Clone)]
pub struct CustomerNode {
    pub customer: Customer,
    /// The stream version this state was folded at (pass it as `expectedVersion`).
    pub version: u64,
    pub source: TimelineSource,
    /// Whether `customer` was folded from their own stream in this request (then its
    /// `forgotten` is the stream's word and need not be looked up again).
    pub folded: bool,
}

/// A customer's standing.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum CustomerState {
    Active,
    Merged,
    Forgotten,
}

/// Loads a customer of workspace `ws`; `None` when absent (or another workspace's).
pub fn load(
    shared: &Shared,
    ws: d::WorkspaceId,
    id: d::CustomerId,
) -> async_graphql::Result<Option<CustomerNode>> {
    let (state, version) = shared
        .bus
        .load::<CustomerAggregate>(ws.as_uuid(), &d::StreamRef::Customer(id))
        .map_err(|e| ApiError::from(e).extend())?;
    Ok(state.customer().map(|c| CustomerNode {
        customer: c.clone(),
        version: version.unwrap_or(0),
        source: TimelineSource::Live,
        folded: true,
    }))
}

/// Loads a customer or fails with NOT_FOUND.
pub fn load_required(
    shared: &Shared,
    ws: d::WorkspaceId,
    id: d::CustomerId,
) -> async_graphql::Result<CustomerNode> {
    load(shared, ws, id)?.ok_or_else(|| ApiError::NotFound(format!("customer {id}")).extend())
}

/// A customer as the directory projection holds them (personal fields the directory keeps
/// sealed are opened through the vault).
fn from_directory(
    shared: &Shared,
    ws: d::WorkspaceId,
    mut entry: DirectoryEntry,
) -> async_graphql::Result<CustomerNode> {
    if shared.vault.is_some() {
        use d::personal::PersonalField as F;
        let mut reveal = crate::schema::erasure::Reveal::new(shared, ws);
        let id = entry.customer_id;
        entry.reference = reveal.text(id, F::CustomerReference, &entry.reference);
        entry.display_name = reveal.text(id, F::DisplayName, &entry.display_name);
        for point in &mut entry.contact_points {
            point.value = reveal.text(id, F::ContactPointValue, &point.value);
        }
    }
    let stream = d::StreamRef::Customer(entry.customer_id).stream_id();
    let version = shared
        .store
        .stream_version(&stream)
        .map_err(store_error)?
        .unwrap_or(0);
    Ok(CustomerNode {
        customer: Customer {
            customer_id: entry.customer_id,
            reference: entry.reference,
            display_name: entry.display_name,
            language: entry.language,
            time_zone: entry.time_zone,
            contact_points: entry.contact_points,
            preferred_channel: entry.preferred_channel,
            consent_to_contact: entry.consent_to_contact,
            registered_at: entry.registered_at.unwrap_or_default(),
            merged_into: entry.merged_into,
            forgotten: entry.forgotten,
        },
        version,
        source: TimelineSource::Live,
        folded: false,
    })
}

/// An edge of the customer directory.
#[derive(SimpleObject)]
pub struct CustomerEdge {
    pub cursor: String,
    pub node: CustomerNode,
}

/// A page of the customer directory.
#[derive(SimpleObject)]
pub struct CustomerConnection {
    pub edges: Vec<CustomerEdge>,
    pub page_info: PageInfo,
}

/// One entry of a customer's timeline, with the workspace-local position of its event once
/// known (a timeline page translates its positions in one go; see `positions::locals`).
pub struct TimelineEntryNode(pub TimelineEntry, pub Option<u64>);

#[Object(name = "TimelineEntry")]
impl TimelineEntryNode {
    /// Position of the event behind the entry, local to the workspace (as in `allEvents`).
    async fn position(&self, ctx: &Context<'_>) -> async_graphql::Result<u64> {
        if let Some(local) = self.1 {
            return Ok(local);
        }
        let shared = shared(ctx)?;
        let ws = workspace(ctx)?;
        crate::schema::positions::local(shared, ws, self.0.position).await
    }
    /// When it happened.
    async fn at(&self) -> DateTime {
        DateTime(self.0.at)
    }
    async fn kind(&self) -> EntryKind {
        self.0.kind.into()
    }
    async fn channel(&self) -> Option<Channel> {
        self.0.channel.map(Into::into)
    }
    /// Who recorded it.
    async fn actor(&self) -> &str {
        &self.0.actor
    }
    /// A short human summary (personal text reads `[erased]` once the customer is forgotten).
    async fn summary(&self) -> &str {
        &self.0.summary
    }
    async fn case_id(&self) -> Option<ID> {
        self.0.case_id.map(|i| ID(i.to_string()))
    }
    async fn interaction_id(&self) -> Option<ID> {
        self.0.interaction_id.map(|i| ID(i.to_string()))
    }
    async fn survey_id(&self) -> Option<ID> {
        self.0.survey_id.map(|i| ID(i.to_string()))
    }
    async fn follow_up_id(&self) -> Option<ID> {
        self.0.follow_up_id.map(|i| ID(i.to_string()))
    }
    async fn agent_id(&self) -> Option<ID> {
        self.0.agent_id.map(|i| ID(i.to_string()))
    }
    /// Set when the entry came from a customer merged into this one.
    async fn origin_customer_id(&self) -> Option<ID> {
        self.0.origin_customer.map(|i| ID(i.to_string()))
    }
}

/// An edge of a timeline connection.
#[derive(SimpleObject)]
pub struct TimelineEdge {
    pub cursor: String,
    pub node: TimelineEntryNode,
}

/// A page of a customer's timeline.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct TimelineConnection {
    pub edges: TimelineEdges,
    pub page_info: PageInfo,
    /// The number of entries in the whole timeline, read with the page when the request
    /// selects `totalCount` (most pages do not, and the read was ~1.4 % of a page's CPU).
    #[graphql(skip)]
    pub total: Option<u64>,
}

#[ComplexObject]
impl TimelineConnection {
    /// Entries in the whole timeline (before filters).
    async fn total_count(&self) -> async_graphql::Result<u64> {
        self.total.ok_or_else(|| {
            ApiError::internal("totalCount resolved on a page read without it").extend()
        })
    }
}

/// Complexity of a paged field: the page size times its children.
pub fn paged(first: Option<i32>, last: Option<i32>, child: usize) -> usize {
    let n = first.or(last).unwrap_or(50).clamp(1, 10_000);
    usize::try_from(n).unwrap_or(1).saturating_mul(child.max(1))
}

/// Timeline paging and filter arguments.
pub struct TimelineArgs {
    pub first: Option<i32>,
    pub after: Option<String>,
    pub last: Option<i32>,
    pub before: Option<String>,
    pub newest_first: bool,
    pub channels: Option<Vec<Channel>>,
    pub kinds: Option<Vec<EntryKind>>,
    pub from: Option<DateTime>,
    pub to: Option<DateTime>,
    /// Whether to count the whole timeline too (`totalCount` is selected).
    pub with_total: bool,
}

/// Reads one page of `customer`'s timeline from `tree`; `forgotten` is whether the
/// customer's stream, as the caller just loaded it, says they were forgotten (`None`: not
/// loaded, look it up). The page is as the projection knows it: its edges have no cursor
/// and no workspace-local position yet, and its start and end cursors hold global
/// positions; [`localise`] makes it what clients see.
pub fn timeline_page(
    tree: &sled::Tree,
    shared: &Shared,
    ws: d::WorkspaceId,
    customer: d::CustomerId,
    forgotten: Option<bool>,
    args: TimelineArgs,
) -> async_graphql::Result<TimelineConnection> {
    if args.first.is_some() && args.last.is_some() {
        return Err(ApiError::validation("give `first` or `last`, not both", "PAGE_ARGS").extend());
    }
    let first = args
        .first
        .map(|n| page_size(&shared.config, Some(n), DEFAULT_TIMELINE_PAGE))
        .transpose()?;
    let last = args
        .last
        .map(|n| page_size(&shared.config, Some(n), DEFAULT_TIMELINE_PAGE))
        .transpose()?;
    let first = if first.is_none() && last.is_none() {
        Some(DEFAULT_TIMELINE_PAGE.min(shared.config.max_page))
    } else {
        first
    };
    if let (Some(from), Some(to)) = (args.from, args.to) {
        if from > to {
            return Err(ApiError::validation("`from` is after `to`", "INVALID_PERIOD").extend());
        }
    }
    let query = TimelineQuery {
        first,
        after: args.after,
        last,
        before: args.before,
        newest_first: args.newest_first,
        channels: args
            .channels
            .map(|c| c.into_iter().map(Into::into).collect()),
        kinds: args.kinds.map(|k| k.into_iter().map(Into::into).collect()),
        from: args.from.map(|t| t.0),
        to: args.to.map(|t| t.0),
    };
    let page = timeline::page(tree, ws, customer, &query).map_err(projection_error)?;
    let total = if args.with_total {
        Some(timeline::count(tree, ws, customer).map_err(projection_error)?)
    } else {
        None
    };
    let mut reveal = crate::schema::erasure::Reveal::new(shared, ws);
    if let Some(forgotten) = forgotten {
        reveal = reveal.knowing(customer, forgotten);
    }
    Ok(TimelineConnection {
        edges: TimelineEdges(
            page.entries
                .into_iter()
                .map(|e| TimelineEdge {
                    // Made with the entry's workspace-local position (see `localise`).
                    cursor: String::new(),
                    node: TimelineEntryNode(reveal.entry(customer, e), None),
                })
                .collect(),
        ),
        page_info: PageInfo {
            has_next_page: page.has_next,
            has_previous_page: page.has_previous,
            start_cursor: page.start_cursor,
            end_cursor: page.end_cursor,
        },
        total,
    })
}

/// Gives the edges of a page from [`timeline_page`] their workspace-local positions, and
/// cursors made from them, and translates the page's start and end cursors (which hold
/// global positions, and may name where a scan stopped rather than an entry): every
/// position in one read of the index (see [`positions::locals`]).
async fn localise(
    shared: &Shared,
    ws: d::WorkspaceId,
    page: &mut TimelineConnection,
) -> async_graphql::Result<()> {
    let ends = [&page.page_info.start_cursor, &page.page_info.end_cursor]
        .into_iter()
        .flatten()
        .map(|c| positions::split_cursor(c))
        .collect::<async_graphql::Result<Vec<_>>>()?;
    let globals: Vec<u64> = page
        .edges
        .0
        .iter()
        .map(|e| e.node.0.position)
        .chain(ends.iter().map(|(_, global)| *global))
        .collect();
    let locals = positions::locals(shared, ws, &globals).await?;
    let (edge_locals, end_locals) = locals.split_at(page.edges.0.len());
    for (edge, &local) in page.edges.0.iter_mut().zip(edge_locals) {
        edge.node.1 = Some(local);
        edge.cursor = timeline::cursor_at(edge.node.0.at, local);
    }
    let mut end_locals = ends.iter().zip(end_locals);
    for cursor in [
        &mut page.page_info.start_cursor,
        &mut page.page_info.end_cursor,
    ]
    .into_iter()
    .flatten()
    {
        if let Some(((at, _), &local)) = end_locals.next() {
            *cursor = positions::join_cursor(*at, local);
        }
    }
    Ok(())
}

#[Object(name = "Customer")]
impl CustomerNode {
    async fn id(&self) -> ID {
        ID(self.customer.customer_id.to_string())
    }
    /// The business's unique reference number for the customer.
    async fn reference(&self) -> &str {
        &self.customer.reference
    }
    /// Empty once forgotten.
    async fn display_name(&self) -> &str {
        &self.customer.display_name
    }
    /// BCP-47 tag.
    async fn language(&self) -> &str {
        &self.customer.language
    }
    /// IANA time zone.
    async fn time_zone(&self) -> &str {
        &self.customer.time_zone
    }
    async fn contact_points(&self) -> Vec<ContactPoint> {
        self.customer
            .contact_points
            .iter()
            .map(ContactPoint::from)
            .collect()
    }
    async fn preferred_channel(&self) -> Option<Channel> {
        self.customer.preferred_channel.map(Into::into)
    }
    async fn consent_to_contact(&self) -> Option<bool> {
        self.customer.consent_to_contact
    }
    async fn registered_at(&self) -> DateTime {
        DateTime(self.customer.registered_at)
    }
    /// The survivor this customer was merged into.
    async fn merged_into(&self) -> Option<ID> {
        self.customer.merged_into.map(|i| ID(i.to_string()))
    }
    async fn forgotten(&self) -> bool {
        self.customer.forgotten
    }
    async fn state(&self) -> CustomerState {
        if self.customer.forgotten {
            CustomerState::Forgotten
        } else if self.customer.merged_into.is_some() {
            CustomerState::Merged
        } else {
            CustomerState::Active
        }
    }
    /// The customer stream's version (pass it as `expectedVersion` to guard against races).
    async fn version(&self) -> u64 {
        self.version
    }
    /// The customer journey: every interaction, note, case event, survey answer and
    /// follow-up, oldest first unless `newestFirst`.
    #[allow(clippy::too_many_arguments)]
    #[graphql(complexity = "paged(first, last, child_complexity)")]
    async fn timeline(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        newest_first: Option<bool>,
        channels: Option<Vec<Channel>>,
        kinds: Option<Vec<EntryKind>>,
        from: Option<DateTime>,
        to: Option<DateTime>,
    ) -> async_graphql::Result<TimelineConnection> {
        let shared = shared(ctx)?;
        let ws = workspace(ctx)?;
        // Clients hold cursors with workspace-local positions (see `positions`).
        let after = after
            .map(|c| positions::cursor_to_global(shared, ws, &c))
            .transpose()?;
        let before = before
            .map(|c| positions::cursor_to_global(shared, ws, &c))
            .transpose()?;
        let args = TimelineArgs {
            first,
            after,
            last,
            before,
            newest_first: newest_first.unwrap_or(false),
            channels,
            kinds,
            from,
            to,
            // Conservative: a `totalCount` anywhere in the selection (under a fragment, an
            // alias or a directive) counts.
            with_total: ctx.look_ahead().field("totalCount").exists(),
        };
        let id = self.customer.customer_id;
        let mut page = match &self.source {
            TimelineSource::Live => shared
                .projections
                .read("timeline", |tree| {
                    let forgotten = self.folded.then_some(self.customer.forgotten);
                    timeline_page(tree, shared, ws, id, forgotten, args)
                })
                .map_err(projection_error)??,
            TimelineSource::AsOf(asof) => {
                let mut page = timeline_page(&asof.tree, shared, ws, id, None, args)?;
                if asof.erase {
                    // Forgotten since: the past is shown without its personal text.
                    for edge in &mut page.edges.0 {
                        edge.node.0.summary = crate::schema::erasure::ERASED.to_owned();
                    }
                }
                page
            }
        };
        localise(shared, ws, &mut page).await?;
        Ok(page)
    }
}

/// Customer queries.
#[derive(Default)]
pub struct CustomerQuery;

#[Object]
impl CustomerQuery {
    /// A customer by id; NOT_FOUND when there is none in the caller's workspace.
    #[graphql(guard = "Need(Permission::ReadCustomers)")]
    async fn customer(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<CustomerNode> {
        let id = parse_id(&id, d::CustomerId::parse, "id")?;
        load_required(shared(ctx)?, workspace(ctx)?, id)
    }

    /// The customer with this reference number (ASCII case-insensitive); a reference of a
    /// customer merged away answers with the survivor. NOT_FOUND when there is none.
    #[graphql(guard = "Need(Permission::ReadCustomers)")]
    async fn customer_by_reference(
        &self,
        ctx: &Context<'_>,
        reference: String,
    ) -> async_graphql::Result<CustomerNode> {
        let shared = shared(ctx)?;
        let ws = workspace(ctx)?;
        let hits = shared
            .projections
            .read("directory", |tree| match &shared.vault {
                // A sealed store indexes keyed hashes (see the directory's docs).
                Some(vault) => directory::by_reference_sealed(tree, vault, ws, &reference),
                None => directory::by_reference(tree, ws, &reference),
            })
            .map_err(projection_error)?
            .map_err(projection_error)?;
        let hit = hits
            .into_iter()
            .find(|h| !h.customer.forgotten)
            .ok_or_else(|| {
                ApiError::NotFound("customer with that reference".to_owned()).extend()
            })?;
        from_directory(shared, ws, hit.customer)
    }

    /// The customer reachable at a contact point: an email (any case), a phone number (any
    /// accepted spelling of the E.164 number), a social handle (`network:@handle`) or a
    /// messaging id (`app:id`), normalised as when it was added. A contact point of a
    /// customer merged away answers with the survivor; when several customers share it, the
    /// first registered still on record answers. NOT_FOUND when there is none in the
    /// caller's workspace (another workspace's customers are never found); a value that is
    /// not a valid contact point of `kind` is VALIDATION.
    #[graphql(guard = "Need(Permission::ReadCustomers)")]
    async fn customer_by_contact(
        &self,
        ctx: &Context<'_>,
        kind: ContactKind,
        value: String,
    ) -> async_graphql::Result<CustomerNode> {
        let shared = shared(ctx)?;
        let ws = workspace(ctx)?;
        let point = d::ContactPoint {
            kind: kind.into(),
            value,
        };
        let hits = shared
            .projections
            .read("directory", |tree| match &shared.vault {
                // A sealed store indexes keyed hashes (see the directory's docs).
                Some(vault) => directory::by_contact_sealed(tree, vault, ws, &point),
                None => directory::by_contact(tree, ws, &point),
            })
            .map_err(projection_error)?
            .map_err(projection_error)?;
        let hit = hits
            .into_iter()
            .find(|h| !h.customer.forgotten)
            .ok_or_else(|| {
                ApiError::NotFound("customer with that contact point".to_owned()).extend()
            })?;
        from_directory(shared, ws, hit.customer)
    }

    /// Active customers, in registration order, or those whose name has words starting with
    /// each word of `search` (case, diacritics and Arabic tashkeel do not matter).
    #[graphql(
        guard = "Need(Permission::ReadCustomers)",
        complexity = "paged(first, None, child_complexity)"
    )]
    async fn customers(
        &self,
        ctx: &Context<'_>,
        search: Option<String>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<CustomerConnection> {
        let shared = shared(ctx)?;
        let ws = workspace(ctx)?;
        let size = page_size(&shared.config, first, 50)?;
        let query = PageQuery {
            first: Some(size),
            after,
        };
        let page = shared
            .projections
            .read("directory", |tree| {
                match (search.as_deref(), &shared.vault) {
                    // A sealed store's search is an exact lookup of hashed name-word prefixes, so
                    // its results are ordered by hash, then id (not alphabetically).
                    (Some(text), Some(vault)) => {
                        directory::search_sealed(tree, vault, ws, text, &query)
                    }
                    (Some(text), None) => directory::search(tree, ws, text, &query),
                    (None, _) => directory::list(tree, ws, &query),
                }
            })
            .map_err(projection_error)?
            .map_err(projection_error)?;
        let edges = page
            .entries
            .into_iter()
            .map(|entry| {
                let cursor = entry.cursor.clone();
                from_directory(shared, ws, entry).map(|node| CustomerEdge { cursor, node })
            })
            .collect::<async_graphql::Result<Vec<_>>>()?;
        Ok(CustomerConnection {
            page_info: PageInfo {
                has_next_page: page.has_next,
                has_previous_page: false,
                start_cursor: edges.first().map(|e| e.cursor.clone()),
                end_cursor: page.end_cursor,
            },
            edges,
        })
    }
}
