//! Owns the workloads: `timeline`, `write`, `mixed`, `audit` and `subscribe`,
//! each a loop one client runs until the deadline or its request budget.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::client::{Client, Failure};
use crate::ops;
use crate::stats::Recorder;

/// What every client of a run shares.
pub struct Shared {
    pub client: Client,
    pub customers: Vec<String>,
    /// Agent ids to attribute interactions to (empty: a bot handles them).
    pub agents: Vec<String>,
    pub deadline: Instant,
    /// Requests left when the run is bounded by count.
    pub budget: Option<AtomicU64>,
    pub seq: AtomicU64,
}

impl Shared {
    /// Whether the client may send one more request.
    pub fn go_on(&self) -> bool {
        if Instant::now() >= self.deadline {
            return false;
        }
        match &self.budget {
            None => true,
            Some(left) => left
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
                .is_ok(),
        }
    }
}

/// A small, fast PRNG (xorshift64*) per client; no need for a crate.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// All customer ids visible to the token (from the directory).
pub async fn discover_customers(client: &Client, limit: usize) -> anyhow::Result<Vec<String>> {
    let mut ids = Vec::new();
    let mut after = Value::Null;
    while ids.len() < limit {
        let (result, _) = client.run(ops::CUSTOMERS, json!({ "after": after })).await;
        let data =
            result.map_err(|Failure(code)| anyhow::anyhow!("listing customers failed: {code}"))?;
        let page = &data["customers"];
        for edge in page["edges"].as_array().into_iter().flatten() {
            if let Some(id) = edge.pointer("/node/id").and_then(Value::as_str) {
                ids.push(id.to_string());
            }
        }
        if page.pointer("/pageInfo/hasNextPage") != Some(&Value::Bool(true)) {
            break;
        }
        after = page
            .pointer("/pageInfo/endCursor")
            .cloned()
            .unwrap_or(Value::Null);
    }
    ids.truncate(limit);
    Ok(ids)
}

/// Agent ids known to the workspace (from the leaderboard over all time).
pub async fn discover_agents(client: &Client) -> Vec<String> {
    let (result, _) = client.run(ops::AGENTS, json!({})).await;
    let Ok(data) = result else { return Vec::new() };
    data["leaderboard"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|row| row["agentId"].as_str().map(str::to_string))
        .collect()
}

/// `data` of [`ops::TIMELINE_PAGE`]: the entries must be there and be JSON, but are not kept.
#[derive(Deserialize)]
struct TimelineData {
    customer: Option<CustomerTimeline>,
}

#[derive(Deserialize)]
struct CustomerTimeline {
    timeline: TimelinePage,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TimelinePage {
    /// Required, so an answer without entries fails; read through, not kept.
    #[serde(rename = "edges")]
    _edges: Vec<IgnoredAny>,
    page_info: PageInfo,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PageInfo {
    has_next_page: bool,
    end_cursor: Option<String>,
}

/// `data` of [`ops::ALL_EVENTS`]: each event's position (the other fields are skipped).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AllEventsData {
    all_events: AllEventsPage,
}

#[derive(Deserialize)]
struct AllEventsPage {
    events: Vec<Positioned>,
}

#[derive(Deserialize)]
struct Positioned {
    position: u64,
}

/// Pages through a random customer's timeline (up to 5 pages), again and again.
pub async fn timeline(shared: Arc<Shared>, seed: u64) -> Recorder {
    let mut rec = Recorder::default();
    let mut rng = Rng::new(seed);
    'outer: while shared.go_on() {
        let id = &shared.customers[rng.below(shared.customers.len())];
        let mut after: Option<String> = None;
        for page in 0..5 {
            if page > 0 && !shared.go_on() {
                break 'outer;
            }
            let (result, took) = shared
                .client
                .run_as::<TimelineData>(ops::TIMELINE_PAGE, json!({"id": id, "after": after}))
                .await;
            match result {
                Ok(data) => {
                    rec.ok("timeline page", took);
                    match data.customer.map(|c| c.timeline.page_info) {
                        Some(PageInfo {
                            has_next_page: true,
                            end_cursor: Some(cursor),
                        }) => after = Some(cursor),
                        _ => break,
                    }
                }
                Err(Failure(code)) => {
                    rec.error(&code);
                    break;
                }
            }
        }
    }
    rec
}

const CHANNELS: [&str; 10] = [
    "PHONE",
    "EMAIL",
    "LIVE_CHAT",
    "SOCIAL",
    "MESSAGING",
    "IN_PERSON",
    "IVR",
    "MOBILE_APP",
    "SELF_SERVICE",
    "CHATBOT",
];

/// One write: an interaction (70%) or a whole case worked to resolution (30%:
/// open, respond, resolve, each guarded by the version it read, retrying
/// conflicts after re-reading).
pub async fn write_once(shared: &Shared, rng: &mut Rng, rec: &mut Recorder) {
    let customer = &shared.customers[rng.below(shared.customers.len())];
    let channel = CHANNELS[rng.below(CHANNELS.len())];
    let n = shared.seq.fetch_add(1, Ordering::Relaxed);
    if rng.below(10) < 7 {
        let mut input = json!({
            "customerId": customer, "channel": channel, "direction": "INBOUND", "language": "en",
            "summary": format!("load test contact {n}"), "durationSeconds": 30 + rng.below(600),
            "clientMutationId": format!("load-{seed}-{n}", seed = rng.next()),
        });
        if shared.agents.is_empty() {
            input["bot"] = json!("sijil-load");
        } else {
            input["agentId"] = json!(shared.agents[rng.below(shared.agents.len())]);
        }
        let (result, took) = shared
            .client
            .run(ops::RECORD_INTERACTION, json!({"input": input}))
            .await;
        match result {
            Ok(_) => rec.ok("record interaction", took),
            Err(Failure(code)) => rec.error(&code),
        }
        return;
    }
    let input = json!({
        "customerId": customer, "subject": format!("load test case {n}"), "category": "billing",
        "priority": "NORMAL", "channel": channel,
    });
    let (result, took) = shared
        .client
        .run(ops::OPEN_CASE, json!({"input": input}))
        .await;
    let (case_id, mut version) = match result {
        Ok(data) => {
            rec.ok("open case", took);
            let id = data
                .pointer("/openCase/case/id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let version = data
                .pointer("/openCase/case/version")
                .and_then(Value::as_u64)
                .unwrap_or(1);
            (id, version)
        }
        Err(Failure(code)) => return rec.error(&code),
    };
    let steps: [(&'static str, &str, &str, Value); 2] = [
        (
            "respond to case",
            ops::RESPOND,
            "/respondToCase/case/version",
            json!({"caseId": case_id, "channel": channel}),
        ),
        (
            "resolve case",
            ops::RESOLVE,
            "/resolveCase/case/version",
            json!({"caseId": case_id, "resolution": "explained the charge", "rootCause": "billing-error", "firstContactResolution": true}),
        ),
    ];
    for (name, query, version_at, mut input) in steps {
        for attempt in 0..3 {
            input["expectedVersion"] = json!(version);
            let (result, took) = shared.client.run(query, json!({"input": input})).await;
            match result {
                Ok(data) => {
                    rec.ok(name, took);
                    version = data
                        .pointer(version_at)
                        .and_then(Value::as_u64)
                        .unwrap_or(version + 1);
                    break;
                }
                Err(Failure(code)) if code == "CONFLICT" && attempt < 2 => {
                    rec.error("CONFLICT (retried)");
                    let (fresh, _) = shared
                        .client
                        .run(ops::CASE_VERSION, json!({"id": case_id}))
                        .await;
                    match fresh
                        .ok()
                        .and_then(|d| d.pointer("/case/version").and_then(Value::as_u64))
                    {
                        Some(v) => version = v,
                        None => return,
                    }
                }
                Err(Failure(code)) => return rec.error(&code),
            }
        }
    }
}

/// Writes until the deadline.
pub async fn write(shared: Arc<Shared>, seed: u64) -> Recorder {
    let mut rec = Recorder::default();
    let mut rng = Rng::new(seed);
    while shared.go_on() {
        write_once(&shared, &mut rng, &mut rec).await;
    }
    rec
}

/// Agents' mix: 90% timeline pages, 10% writes.
pub async fn mixed(shared: Arc<Shared>, seed: u64) -> Recorder {
    let mut rec = Recorder::default();
    let mut rng = Rng::new(seed);
    while shared.go_on() {
        if rng.below(10) == 0 {
            write_once(&shared, &mut rng, &mut rec).await;
        } else {
            let id = &shared.customers[rng.below(shared.customers.len())];
            let (result, took) = shared
                .client
                .run_as::<TimelineData>(ops::TIMELINE_PAGE, json!({"id": id, "after": null}))
                .await;
            match result {
                Ok(_) => rec.ok("timeline page", took),
                Err(Failure(code)) => rec.error(&code),
            }
        }
    }
    rec
}

/// Tails `allEvents` from position 1 in pages of 200; counts events read.
pub async fn audit(shared: Arc<Shared>, events_read: Arc<AtomicU64>) -> Recorder {
    let mut rec = Recorder::default();
    let mut from = 1u64;
    while shared.go_on() {
        let (result, took) = shared
            .client
            .run_as::<AllEventsData>(ops::ALL_EVENTS, json!({"from": from}))
            .await;
        match result {
            Ok(data) => {
                rec.ok("allEvents page", took);
                let events = data.all_events.events;
                match events.last().map(|e| e.position) {
                    Some(last) => {
                        events_read.fetch_add(events.len() as u64, Ordering::Relaxed);
                        from = last + 1;
                    }
                    None => from = 1,
                }
            }
            Err(Failure(code)) => rec.error(&code),
        }
    }
    rec
}

/// What a subscriber follows.
#[derive(Clone, Debug)]
pub enum Follow {
    /// The workspace's log (`eventAppended`): one delivery per event.
    Events,
    /// One customer's timeline (`timelineUpdated`): one delivery per new entry.
    Timeline(String),
    /// The workspace's case changes (`escalationChanged`): one delivery per change; the lag
    /// of the changes the load tool makes (opened, first response, resolved) is recorded.
    Escalation,
}

/// One live subscriber: records, for every event (or timeline entry, or case change) delivered,
/// the delay between the server recording it (`recordedAt`; a timeline entry's `at` or the
/// case's time of that change, which is when the server took the command for the load tool's
/// writes) and this client receiving it.
pub async fn subscriber(
    base: String,
    token: String,
    follow: Follow,
    deadline: Instant,
) -> Recorder {
    let mut rec = Recorder::default();
    // No `fromPosition`: the subscription starts at the next event appended.
    let (query, variables) = match &follow {
        Follow::Events => (ops::EVENT_APPENDED, json!({})),
        Follow::Timeline(customer) => (ops::TIMELINE_UPDATED, json!({ "customer": customer })),
        Follow::Escalation => (ops::ESCALATION_CHANGED, json!({})),
    };
    let mut sub = match crate::ws::Subscription::start(&base, &token, query, variables).await {
        Ok(s) => s,
        Err(_) => {
            rec.error("SUBSCRIBE_FAILED");
            return rec;
        }
    };
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        match tokio::time::timeout(left, sub.next()).await {
            Err(_) | Ok(None) => break,
            Ok(Some(Err(_))) => {
                rec.error("SUBSCRIPTION_ERROR");
                break;
            }
            Ok(Some(Ok(data))) => {
                let times: Vec<Option<i64>> = match follow {
                    Follow::Events => vec![data
                        .pointer("/eventAppended/recordedAt")
                        .and_then(Value::as_str)
                        .and_then(crate::ws::parse_millis)],
                    Follow::Timeline(_) => data
                        .pointer("/timelineUpdated/entries")
                        .and_then(Value::as_array)
                        .map(|entries| {
                            entries
                                .iter()
                                .map(|e| e["at"].as_str().and_then(crate::ws::parse_millis))
                                .collect()
                        })
                        .unwrap_or_else(|| vec![None]),
                    Follow::Escalation => {
                        let change = &data["escalationChanged"];
                        let field = match change["eventType"].as_str() {
                            Some("CaseOpened") => "openedAt",
                            Some("FirstResponseGiven") => "firstResponseAt",
                            Some("CaseResolved") => "resolvedAt",
                            Some(_) => continue,
                            None => "",
                        };
                        vec![change["case"][field]
                            .as_str()
                            .and_then(crate::ws::parse_millis)]
                    }
                };
                for at in times {
                    match at {
                        Some(at) => {
                            let lag = now_millis().saturating_sub(at).max(0) as u64;
                            rec.ok("delivery lag", Duration::from_millis(lag));
                        }
                        None => rec.error("BAD_EVENT"),
                    }
                }
            }
        }
    }
    rec
}

fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
