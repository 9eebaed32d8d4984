//! Applies domain events to the timeline: builds each entry's summary, finds the customer it
//! belongs to (through case and follow-up rows and merge redirects), copies histories on
//! merge and erases personal text on forget.

use std::cell::RefCell;
use std::collections::BTreeSet;

use rustc_hash::{FxHashMap, FxHashSet};
use sijil_domain::events::*;
use sijil_domain::{
    Channel, CustomerId, DomainEvent, FeedbackSubject, Handler, NoteTarget, RecognitionBasis,
    Reward, Score, SlaTarget,
};
use uuid::Uuid;

use super::super::error::ProjectionError;
use super::super::keys::{typed, Key, Reader};
use super::super::overlay::{Deferred, Overlay};
use super::super::text::{short, utc_minute};
use super::super::EventMeta;
use super::{
    block, decode_entry, encode_entry, EntryKind, StoredEntry, AGENT, CASE, COUNT, ENTRY, ERASED,
    FOLLOW_UP, FORGOTTEN, MERGED, REDIRECT,
};

/// Whether `text` is a sealed personal field (kept whole in summaries).
fn is_sealed(text: &str) -> bool {
    text.starts_with(crate::vault::SEALED_PREFIX)
}

/// Longest personal text kept in a summary, in characters.
const TEXT_CHARS: usize = 160;
/// Longest merge chain followed (guards against cycles in bad data).
const MAX_HOPS: usize = 64;
/// Most customers one erasure walks through via merges.
const MAX_MERGED: usize = 10_000;

/// An entry before it is placed.
struct Draft {
    kind: EntryKind,
    channel: Option<Channel>,
    fixed: String,
    text: Option<String>,
    entry: StoredEntry,
}

impl Draft {
    fn new(kind: EntryKind, fixed: impl Into<String>) -> Draft {
        Draft {
            kind,
            channel: None,
            fixed: fixed.into(),
            text: None,
            entry: StoredEntry {
                actor: String::new(),
                fixed: String::new(),
                text: None,
                case_id: None,
                interaction_id: None,
                survey_id: None,
                follow_up_id: None,
                agent_id: None,
                origin_customer: None,
            },
        }
    }

    /// The personal part of the summary. A sealed field (see [`crate::vault`]) is kept
    /// whole, never shortened, so the gateway can open it when serving; plaintext is cut to
    /// [`TEXT_CHARS`].
    fn text(mut self, text: &str) -> Draft {
        self.text = Some(if is_sealed(text) {
            text.to_owned()
        } else {
            short(text, TEXT_CHARS)
        });
        self
    }

    fn channel(mut self, channel: Channel) -> Draft {
        self.channel = Some(channel);
        self
    }
}

/// The facts every entry of one event shares, and the projection's held state.
struct Ctx<'m> {
    ws: Uuid,
    meta: &'m EventMeta<'m>,
    held: RefCell<Box<Held>>,
}

fn key_of(prefix: u8, ws: Uuid, id: Uuid) -> Vec<u8> {
    Key::new(prefix).uuid(ws).uuid(id).build()
}

fn uuid_value(bytes: &[u8], what: &'static str) -> Result<Uuid, ProjectionError> {
    let mut reader = Reader::new(bytes, what);
    reader.uuid()
}

/// Follows merge redirects from `customer` to the customer whose range is current.
fn resolve(ov: &Overlay<'_>, ctx: &Ctx<'_>, customer: Uuid) -> Result<Uuid, ProjectionError> {
    let mut current = customer;
    for _ in 0..MAX_HOPS {
        match redirect(ov, ctx, current)? {
            Some(next) => {
                if next == customer {
                    break;
                }
                current = next;
            }
            None => break,
        }
    }
    Ok(current)
}

/// The customer `customer` was merged into, if any.
fn redirect(
    ov: &Overlay<'_>,
    ctx: &Ctx<'_>,
    customer: Uuid,
) -> Result<Option<Uuid>, ProjectionError> {
    if let Some(known) = &ctx.held.borrow().known {
        return Ok(known.redirects.get(&(ctx.ws, customer)).copied());
    }
    match ov.get(&key_of(REDIRECT, ctx.ws, customer))? {
        Some(next) => Ok(Some(uuid_value(&next, "timeline redirect")?)),
        None => Ok(None),
    }
}

fn is_forgotten(ov: &Overlay<'_>, ctx: &Ctx<'_>, customer: Uuid) -> Result<bool, ProjectionError> {
    if let Some(known) = &ctx.held.borrow().known {
        return Ok(known.forgotten.contains(&(ctx.ws, customer)));
    }
    Ok(ov.get(&key_of(FORGOTTEN, ctx.ws, customer))?.is_some())
}

/// Rows held back while a chunk is applied (see [`Deferred`]): customers' open last blocks
/// and their entry counts. In a fill ([`Overlay::carrying`]) they stay held over commits
/// (within [`Overlay::carry_budget`]), with the owners of cases and follow-ups seen, and,
/// when the fill began on an empty tree, every merge redirect and forgotten customer.
#[derive(Debug, Default)]
struct Held {
    /// Whether this state has seen an event yet.
    started: bool,
    tails: block::Tails,
    /// Count row key → count.
    counts: FxHashMap<Vec<u8>, u64>,
    /// (keyspace, workspace, case or follow-up) → customer, as in the `K` and `F` rows.
    owners: FxHashMap<(u8, Uuid, Uuid), Uuid>,
    /// Every `R` and `X` row of the tree, when this state has seen every event applied to it.
    known: Option<Known>,
}

/// The rare rows a fill from an empty tree keeps whole, so that the common answer ("not
/// merged", "not forgotten") costs no tree lookup.
#[derive(Debug, Default)]
struct Known {
    /// (workspace, customer) → the customer it was merged into.
    redirects: FxHashMap<(Uuid, Uuid), Uuid>,
    /// (workspace, customer) forgotten.
    forgotten: FxHashSet<(Uuid, Uuid)>,
}

impl Deferred for Held {
    fn flush(mut self: Box<Self>, ov: &mut Overlay<'_>) -> Result<(), ProjectionError> {
        self.tails.close_all(ov);
        self.write_counts(ov);
        Ok(())
    }

    fn flush_and_carry(
        mut self: Box<Self>,
        ov: &mut Overlay<'_>,
    ) -> Result<Option<Box<dyn Deferred>>, ProjectionError> {
        if self.carried_bytes() <= ov.carry_budget() {
            // Open blocks and counts stay in memory, unwritten, until the fill ends
            // (`Overlay::settle`): a customer's last block is written once, not once a chunk.
            return Ok(Some(self));
        }
        // Over the budget: written but kept open (where each block ends, not its bytes, which
        // are read back on the next append), so after the commit the tree holds these rows.
        self.tails.write_open(ov);
        self.write_counts(ov);
        if self.carried_bytes() > ov.carry_budget() {
            self.tails = block::Tails::default();
            self.counts = FxHashMap::default();
            self.owners = FxHashMap::default();
        }
        Ok(Some(self))
    }
}

impl Held {
    /// Roughly the memory held: open blocks, counters and owners.
    fn carried_bytes(&self) -> usize {
        self.tails.held_bytes()
            + self.counts.len() * (std::mem::size_of::<u64>() + 64)
            + self.owners.len() * 64
    }

    /// Writes every held count row into the overlay.
    fn write_counts(&self, ov: &mut Overlay<'_>) {
        for (key, count) in &self.counts {
            ov.insert(key.clone(), count.to_be_bytes().to_vec());
        }
    }

    fn bump_count(
        &mut self,
        ov: &Overlay<'_>,
        ws: Uuid,
        customer: Uuid,
        by: u64,
    ) -> Result<(), ProjectionError> {
        let key = key_of(COUNT, ws, customer);
        let count = match self.counts.get_mut(&key) {
            Some(count) => count,
            None => {
                let stored = match ov.get(&key)? {
                    Some(bytes) => Reader::new(&bytes, "timeline count").u64()?,
                    None => 0,
                };
                self.counts.entry(key).or_insert(stored)
            }
        };
        *count = count.saturating_add(by);
        Ok(())
    }
}

/// Writes the open blocks into the overlay, before blocks are read or rewritten through it.
fn close_blocks(ov: &mut Overlay<'_>, ctx: &Ctx<'_>) {
    ctx.held.borrow_mut().tails.close_all(ov);
}

/// Writes `draft` into `target`'s range.
fn place(
    ov: &mut Overlay<'_>,
    ctx: &Ctx<'_>,
    target: Uuid,
    origin: Option<Uuid>,
    draft: Draft,
) -> Result<(), ProjectionError> {
    let Draft {
        kind,
        channel,
        fixed,
        mut text,
        mut entry,
    } = draft;
    let erased = is_forgotten(ov, ctx, target)?
        || origin
            .map(|o| is_forgotten(ov, ctx, o))
            .transpose()?
            .unwrap_or(false);
    if erased && text.is_some() {
        text = Some(ERASED.to_owned());
    }
    entry.actor = ctx.meta.actor.to_owned();
    entry.fixed = fixed;
    entry.text = text;
    if let Some(origin) = origin {
        entry.origin_customer = Some(typed(origin, "customer id")?);
    }
    let prefix = Key::new(ENTRY).uuid(ctx.ws).uuid(target).build();
    let order = block::order_of(ctx.meta.occurred_at, ctx.meta.position);
    let value = encode_entry(kind, channel, &entry)?;
    let mut held = ctx.held.borrow_mut();
    held.tails.put(ov, &prefix, order, &value)?;
    held.bump_count(ov, ctx.ws, target, 1)
}

/// Writes `draft` for `customer`, in the range of the customer they were merged into, if any.
fn place_for(
    ov: &mut Overlay<'_>,
    ctx: &Ctx<'_>,
    customer: CustomerId,
    draft: Draft,
) -> Result<(), ProjectionError> {
    let customer = customer.as_uuid();
    let target = resolve(ov, ctx, customer)?;
    let origin = (target != customer).then_some(customer);
    place(ov, ctx, target, origin, draft)
}

/// The customer a case or follow-up row points at.
fn owner(
    ov: &Overlay<'_>,
    ctx: &Ctx<'_>,
    prefix: u8,
    id: Uuid,
) -> Result<Option<CustomerId>, ProjectionError> {
    let held = ctx.held.borrow().owners.get(&(prefix, ctx.ws, id)).copied();
    let customer = match held {
        Some(customer) => customer,
        None => match ov.get(&key_of(prefix, ctx.ws, id))? {
            Some(bytes) => {
                let customer = uuid_value(&bytes, "timeline owner row")?;
                ctx.held
                    .borrow_mut()
                    .owners
                    .insert((prefix, ctx.ws, id), customer);
                customer
            }
            None => return Ok(None),
        },
    };
    Ok(Some(typed(customer, "customer id")?))
}

/// Writes the row saying `customer` owns case or follow-up `id`.
fn set_owner(ov: &mut Overlay<'_>, ctx: &Ctx<'_>, prefix: u8, id: Uuid, customer: Uuid) {
    ov.insert(key_of(prefix, ctx.ws, id), customer.as_bytes().to_vec());
    ctx.held
        .borrow_mut()
        .owners
        .insert((prefix, ctx.ws, id), customer);
}

fn agent_name(
    ov: &Overlay<'_>,
    ws: Uuid,
    agent: Option<sijil_domain::AgentId>,
) -> Result<String, ProjectionError> {
    let Some(agent) = agent else {
        return Ok("an agent".to_owned());
    };
    Ok(match ov.get(&key_of(AGENT, ws, agent.as_uuid()))? {
        Some(name) => String::from_utf8_lossy(&name).into_owned(),
        None => format!("agent {}", short_id(agent.as_uuid())),
    })
}

fn short_id(id: Uuid) -> String {
    id.simple()
        .to_string()
        .chars()
        .rev()
        .take(8)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect()
}

/// Applies one event.
pub(super) fn apply(
    ov: &mut Overlay<'_>,
    meta: &EventMeta<'_>,
    event: &DomainEvent,
) -> Result<(), ProjectionError> {
    let mut held = ov.take_deferred::<Held>();
    if !held.started {
        held.started = true;
        if ov.started_empty() {
            // Made before anything was applied to an empty tree: it sees every R and X row.
            held.known = Some(Known::default());
        }
    }
    let ctx = Ctx {
        ws: meta.workspace_id.as_uuid(),
        meta,
        held: RefCell::new(held),
    };
    let result = apply_event(ov, &ctx, event);
    ov.put_deferred(ctx.held.into_inner());
    result
}

fn apply_event(
    ov: &mut Overlay<'_>,
    ctx: &Ctx<'_>,
    event: &DomainEvent,
) -> Result<(), ProjectionError> {
    match event {
        DomainEvent::CustomerRegistered(e) => {
            // Sealed: the name alone (one field the gateway can open); the reference is on
            // the customer's page.
            let text = if is_sealed(&e.display_name) {
                e.display_name.clone()
            } else {
                format!("{} ({})", e.display_name, e.reference)
            };
            let draft = Draft::new(EntryKind::Registered, "Registered").text(&text);
            place(ov, ctx, e.customer_id.as_uuid(), None, draft)
        }
        DomainEvent::CustomerMerged(e) => merge(ov, ctx, e),
        DomainEvent::CustomerForgotten(e) => forget(ov, ctx, e),
        DomainEvent::InteractionRecorded(e) => interaction(ov, ctx, e),
        DomainEvent::NoteAdded(e) => {
            let mut draft = Draft::new(EntryKind::Note, "Note").text(&e.text);
            match e.target {
                NoteTarget::Case(id) => {
                    draft.fixed = "Note on case".into();
                    draft.entry.case_id = Some(id);
                }
                NoteTarget::Interaction(id) => {
                    draft.fixed = "Note on interaction".into();
                    draft.entry.interaction_id = Some(id);
                }
            }
            draft.entry.agent_id = e.author;
            place_for(ov, ctx, e.customer_id, draft)
        }
        DomainEvent::CaseOpened(e) => {
            set_owner(ov, ctx, CASE, e.case_id.as_uuid(), e.customer_id.as_uuid());
            let fixed = format!(
                "Case opened ({:?} priority, {})",
                e.priority,
                short(&e.category, 60)
            );
            let mut draft = Draft::new(EntryKind::CaseOpened, fixed)
                .channel(e.channel)
                .text(&e.subject);
            draft.entry.case_id = Some(e.case_id);
            place_for(ov, ctx, e.customer_id, draft)
        }
        DomainEvent::CaseAssigned(e) => {
            let who = match (e.agent, e.team) {
                (Some(_), Some(team)) => format!(
                    "{} (team {})",
                    agent_name(ov, ctx.ws, e.agent)?,
                    short_id(team.as_uuid())
                ),
                (Some(_), None) => agent_name(ov, ctx.ws, e.agent)?,
                (None, Some(team)) => format!("team {}", short_id(team.as_uuid())),
                (None, None) => "nobody".to_owned(),
            };
            let mut draft = Draft::new(EntryKind::CaseAssigned, format!("Assigned to {who}"));
            draft.entry.agent_id = e.agent;
            case_entry(ov, ctx, e.case_id, draft)
        }
        DomainEvent::FirstResponseGiven(e) => {
            let fixed = match e.agent {
                Some(_) => format!("First response by {}", agent_name(ov, ctx.ws, e.agent)?),
                None => "First response".to_owned(),
            };
            let mut draft = Draft::new(EntryKind::FirstResponse, fixed).channel(e.channel);
            draft.entry.agent_id = e.agent;
            case_entry(ov, ctx, e.case_id, draft)
        }
        DomainEvent::CaseEscalated(e) => {
            let draft = Draft::new(
                EntryKind::CaseEscalated,
                format!("Escalated to level {}", e.to_level),
            )
            .text(&e.reason);
            case_entry(ov, ctx, e.case_id, draft)
        }
        DomainEvent::CaseDeescalated(e) => {
            let draft = Draft::new(
                EntryKind::CaseDeescalated,
                format!("De-escalated to level {}", e.to_level),
            )
            .text(&e.reason);
            case_entry(ov, ctx, e.case_id, draft)
        }
        DomainEvent::SlaBreached(e) => {
            let target = match e.target {
                SlaTarget::FirstResponse => "First-response",
                SlaTarget::Resolution => "Resolution",
            };
            let late = e.overdue_ms.max(0) / 60_000;
            let draft = Draft::new(
                EntryKind::SlaBreached,
                format!("{target} target breached ({late} min late)"),
            );
            case_entry(ov, ctx, e.case_id, draft)
        }
        DomainEvent::CaseResolved(e) => {
            let fcr = if e.first_contact_resolution {
                ", first contact"
            } else {
                ""
            };
            // A sealed root cause is personal text that cannot be shortened: left out.
            let fixed = if is_sealed(&e.root_cause) {
                let fcr = if e.first_contact_resolution {
                    " (first contact)"
                } else {
                    ""
                };
                format!("Resolved{fcr}")
            } else {
                format!("Resolved (root cause: {}{fcr})", short(&e.root_cause, 60))
            };
            let mut draft = Draft::new(EntryKind::CaseResolved, fixed).text(&e.resolution);
            draft.entry.agent_id = e.agent;
            case_entry(ov, ctx, e.case_id, draft)
        }
        DomainEvent::CaseReopened(e) => {
            let draft = Draft::new(EntryKind::CaseReopened, "Reopened").text(&e.reason);
            case_entry(ov, ctx, e.case_id, draft)
        }
        DomainEvent::CaseClosed(e) => case_entry(
            ov,
            ctx,
            e.case_id,
            Draft::new(EntryKind::CaseClosed, "Closed"),
        ),
        DomainEvent::SurveyAnswered(e) => {
            let fixed = match e.score {
                Score::Csat(s) => format!("CSAT {s}/5"),
                Score::Nps(s) => format!("NPS {s}/10"),
                Score::Ces(s) => format!("CES {s}/7"),
            };
            let mut draft = Draft::new(EntryKind::SurveyAnswered, fixed);
            if let Some(comment) = &e.comment {
                draft = draft.text(comment);
            }
            draft.entry.survey_id = Some(e.survey_id);
            match e.subject {
                FeedbackSubject::Case(id) => draft.entry.case_id = Some(id),
                FeedbackSubject::Interaction(id) => draft.entry.interaction_id = Some(id),
            }
            place_for(ov, ctx, e.customer_id, draft)
        }
        DomainEvent::FollowUpScheduled(e) => {
            set_owner(
                ov,
                ctx,
                FOLLOW_UP,
                e.follow_up_id.as_uuid(),
                e.customer_id.as_uuid(),
            );
            let fixed = format!(
                "Follow-up scheduled ({:?}), due {}",
                e.reason,
                utc_minute(e.due_at.millis())
            );
            let mut draft = Draft::new(EntryKind::FollowUpScheduled, fixed);
            if let Some(note) = &e.note {
                draft = draft.text(note);
            }
            draft.entry.follow_up_id = Some(e.follow_up_id);
            draft.entry.agent_id = e.agent;
            place_for(ov, ctx, e.customer_id, draft)
        }
        DomainEvent::FollowUpCompleted(e) => {
            let mut draft =
                Draft::new(EntryKind::FollowUpCompleted, "Follow-up completed").text(&e.outcome);
            draft.entry.follow_up_id = Some(e.follow_up_id);
            draft.entry.agent_id = e.agent;
            follow_up_entry(ov, ctx, e.follow_up_id.as_uuid(), draft)
        }
        DomainEvent::FollowUpCancelled(e) => {
            let mut draft =
                Draft::new(EntryKind::FollowUpCancelled, "Follow-up cancelled").text(&e.reason);
            draft.entry.follow_up_id = Some(e.follow_up_id);
            follow_up_entry(ov, ctx, e.follow_up_id.as_uuid(), draft)
        }
        DomainEvent::AgentRegistered(e) => {
            ov.insert(
                key_of(AGENT, ctx.ws, e.agent_id.as_uuid()),
                short(&e.display_name, 80).into_bytes(),
            );
            Ok(())
        }
        DomainEvent::AgentRecognised(e) => {
            let RecognitionBasis::Case(case_id) = e.basis else {
                return Ok(());
            };
            let reward = match &e.reward {
                Reward::Kudos => "kudos".to_owned(),
                Reward::Points(p) => format!("{p} points"),
                Reward::Voucher { .. } => "a voucher".to_owned(),
            };
            let fixed = format!(
                "{} recognised ({reward})",
                agent_name(ov, ctx.ws, Some(e.agent_id))?
            );
            let mut draft = Draft::new(EntryKind::Recognition, fixed).text(&e.reason);
            draft.entry.agent_id = Some(e.agent_id);
            case_entry(ov, ctx, case_id, draft)
        }
        // Events this projection does not list in its types never reach it.
        _ => Ok(()),
    }
}

fn interaction(
    ov: &mut Overlay<'_>,
    ctx: &Ctx<'_>,
    e: &InteractionRecorded,
) -> Result<(), ProjectionError> {
    let direction = match e.direction {
        sijil_domain::Direction::Inbound => "Inbound",
        sijil_domain::Direction::Outbound => "Outbound",
    };
    let mut fixed = format!("{direction} {}", e.channel.as_str().replace('_', " "));
    if let Handler::Bot(bot) = &e.handled_by {
        fixed.push_str(&format!(" (bot {})", short(bot, 40)));
    }
    let mut draft = Draft::new(EntryKind::Interaction, fixed)
        .channel(e.channel)
        .text(&e.summary);
    draft.entry.interaction_id = Some(e.interaction_id);
    draft.entry.case_id = e.case_id;
    draft.entry.agent_id = e.handled_by.agent();
    place_for(ov, ctx, e.customer_id, draft)
}

fn case_entry(
    ov: &mut Overlay<'_>,
    ctx: &Ctx<'_>,
    case: sijil_domain::CaseId,
    mut draft: Draft,
) -> Result<(), ProjectionError> {
    draft.entry.case_id = Some(case);
    match owner(ov, ctx, CASE, case.as_uuid())? {
        Some(customer) => place_for(ov, ctx, customer, draft),
        // A case event without a known opening (other workspace or out-of-order data) has no
        // timeline to land in.
        None => Ok(()),
    }
}

fn follow_up_entry(
    ov: &mut Overlay<'_>,
    ctx: &Ctx<'_>,
    follow_up: Uuid,
    draft: Draft,
) -> Result<(), ProjectionError> {
    match owner(ov, ctx, FOLLOW_UP, follow_up)? {
        Some(customer) => place_for(ov, ctx, customer, draft),
        None => Ok(()),
    }
}

/// B merges into A: copy B's entries into the survivor's range, redirect B, add markers.
fn merge(ov: &mut Overlay<'_>, ctx: &Ctx<'_>, e: &CustomerMerged) -> Result<(), ProjectionError> {
    let merged = e.customer_id.as_uuid();
    let into = e.into.as_uuid();
    let survivor = resolve(ov, ctx, into)?;
    if survivor != merged {
        close_blocks(ov, ctx);
        let prefix = Key::new(ENTRY).uuid(ctx.ws).uuid(merged).build();
        let into_prefix = Key::new(ENTRY).uuid(ctx.ws).uuid(survivor).build();
        let mut copied = 0u64;
        for (_, entries) in block::all(ov, &prefix)? {
            for (order, value) in entries {
                let (kind, channel, mut entry) = decode_entry(&value)?;
                if entry.origin_customer.is_none() {
                    entry.origin_customer = Some(e.customer_id);
                }
                block::put(
                    ov,
                    &into_prefix,
                    order,
                    &encode_entry(kind, channel, &entry)?,
                )?;
                copied += 1;
            }
        }
        ctx.held
            .borrow_mut()
            .bump_count(ov, ctx.ws, survivor, copied)?;
        ov.insert(key_of(REDIRECT, ctx.ws, merged), into.as_bytes().to_vec());
        if let Some(known) = &mut ctx.held.borrow_mut().known {
            known.redirects.insert((ctx.ws, merged), into);
        }
        ov.insert(
            Key::new(MERGED)
                .uuid(ctx.ws)
                .uuid(into)
                .uuid(merged)
                .build(),
            Vec::new(),
        );
        let marker = Draft::new(
            EntryKind::Merged,
            format!("Customer {merged} merged into this customer"),
        );
        place(ov, ctx, survivor, Some(merged), marker)?;
    }
    let marker = Draft::new(EntryKind::Merged, format!("Merged into customer {into}"));
    place(ov, ctx, merged, None, marker)
}

/// Replaces the personal text of every entry in `customer`'s range for which `select` holds.
fn erase_range(
    ov: &mut Overlay<'_>,
    ws: Uuid,
    customer: Uuid,
    select: impl Fn(&StoredEntry) -> bool,
) -> Result<(), ProjectionError> {
    let prefix = Key::new(ENTRY).uuid(ws).uuid(customer).build();
    for (key, entries) in block::all(ov, &prefix)? {
        let mut changed = false;
        let mut values = Vec::with_capacity(entries.len());
        for (order, value) in entries {
            let (kind, channel, mut entry) = decode_entry(&value)?;
            if entry.text.as_deref().is_some_and(|t| t != ERASED) && select(&entry) {
                entry.text = Some(ERASED.to_owned());
                values.push((order, encode_entry(kind, channel, &entry)?));
                changed = true;
            } else {
                values.push((order, value));
            }
        }
        if changed {
            let records: Vec<block::Record<'_>> = values
                .iter()
                .map(|(order, value)| block::Record {
                    order: *order,
                    value,
                })
                .collect();
            ov.insert(key, block::encode(&records));
        }
    }
    Ok(())
}

/// Erasure: blank the personal text of the customer, of everyone merged into them, and of
/// their entries in survivors' ranges; later entries about them arrive erased.
fn forget(
    ov: &mut Overlay<'_>,
    ctx: &Ctx<'_>,
    e: &CustomerForgotten,
) -> Result<(), ProjectionError> {
    let ws = ctx.ws;
    let customer = e.customer_id.as_uuid();
    let mut people: BTreeSet<Uuid> = BTreeSet::new();
    let mut queue = vec![customer];
    while let Some(next) = queue.pop() {
        if people.len() >= MAX_MERGED || !people.insert(next) {
            continue;
        }
        let prefix = Key::new(MERGED).uuid(ws).uuid(next).build();
        for (key, _) in ov.scan_prefix(&prefix)? {
            let mut reader = Reader::new(&key[prefix.len()..], "timeline merge row");
            queue.push(reader.uuid()?);
        }
    }
    close_blocks(ov, ctx);
    for person in &people {
        erase_range(ov, ws, *person, |_| true)?;
        ov.insert(key_of(FORGOTTEN, ws, *person), Vec::new());
        if let Some(known) = &mut ctx.held.borrow_mut().known {
            known.forgotten.insert((ws, *person));
        }
    }
    let origins: BTreeSet<CustomerId> = people
        .iter()
        .filter_map(|p| CustomerId::new(*p).ok())
        .collect();
    let mut hop = customer;
    for _ in 0..MAX_HOPS {
        let Some(next) = redirect(ov, ctx, hop)? else {
            break;
        };
        hop = next;
        if people.contains(&hop) {
            break;
        }
        erase_range(ov, ws, hop, |entry| {
            entry.origin_customer.is_some_and(|o| origins.contains(&o))
        })?;
    }
    let fixed = format!(
        "Personal data erased (request {})",
        short(&e.request_reference, 60)
    );
    place(
        ov,
        ctx,
        customer,
        None,
        Draft::new(EntryKind::Forgotten, fixed.clone()),
    )?;
    let target = resolve(ov, ctx, customer)?;
    if target != customer {
        place(
            ov,
            ctx,
            target,
            Some(customer),
            Draft::new(EntryKind::Forgotten, fixed),
        )?;
    }
    Ok(())
}
