//! `sijil demo`: fills an empty store with a deterministic, realistic history — customers from
//! a dozen locales with their own names, languages and time zones, six months of contacts on
//! every channel, cases with SLA policies, escalations, breaches, resolutions with root causes
//! and reopenings, CSAT/NPS/CES answers, follow-ups of detractors, agent recognitions, one
//! merged duplicate customer and one forgotten customer.
//!
//! [`plan`] decides what happens when, [`exec`] runs it through the domain's decide functions
//! and bulk-appends the events; [`rng`] is the seeded generator, [`world`] the vocabulary. The
//! same seed and size always give the same log, hashes included.

pub mod exec;
pub mod plan;
pub mod rng;
pub mod world;

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use sijil_store::vault::Vault;
use sijil_store::Store;
use uuid::Uuid;

/// What the demo wrote.
#[derive(Debug, Clone)]
pub struct DemoReport {
    pub workspace: Uuid,
    pub customers: usize,
    pub agents: usize,
    pub events: u64,
    pub elapsed: Duration,
    /// The reference of the duplicate customer merged into the first one, if any.
    pub merged: Option<String>,
    /// The reference of the customer who asked to be forgotten, if any.
    pub forgotten: Option<String>,
}

impl DemoReport {
    /// The special customers, for a summary line.
    pub fn notes(&self) -> String {
        let mut parts = Vec::new();
        if let Some(r) = &self.merged {
            parts.push(format!("{r} merged into CUST-000000"));
        }
        if let Some(r) = &self.forgotten {
            parts.push(format!("{r} forgotten"));
        }
        parts.join("; ")
    }
}

/// Fills `store`, which must be empty, with `customers` customers' history from `seed`.
/// Shows a progress bar on a terminal when `progress` is set. With a `vault`, personal fields
/// are sealed (so the log is no longer the same byte for byte across runs: each seal uses a
/// fresh nonce) and the forgotten demo customer's key is destroyed at the end.
pub fn run(
    store: &Store,
    vault: Option<&Vault>,
    customers: u32,
    seed: u64,
    progress: bool,
) -> Result<DemoReport> {
    let head = store.head_position();
    if head > 0 {
        bail!(
            "the store already holds {head} events; the demo only fills an empty store \
             (point --data at a new directory)"
        );
    }
    if customers == 0 {
        bail!("--customers must be at least 1");
    }
    let started = Instant::now();
    let plan = plan::plan(customers, seed).context("planning the demo history")?;
    let bar = if progress {
        let bar = ProgressBar::new(plan.steps.len() as u64);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} demo {bar:40} {pos}/{len} commands → events [{elapsed_precise}, {per_sec}]",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    let total_steps = plan.steps.len() as u64;
    let mut events_so_far = 0u64;
    let events = {
        let bar = bar.clone();
        let mut on_written = move |n: u64| {
            events_so_far += n;
            bar.set_message(format!("{events_so_far} events"));
            // Events track steps closely (most steps give one event).
            bar.set_position(events_so_far.min(total_steps));
        };
        exec::execute(&plan, store, vault, seed, &mut on_written)?
    };
    if let Some(vault) = vault {
        // The demo's `CustomerForgotten` events are durable: destroy those keys now.
        sijil_gateway::shredding::repair(vault, store)
            .map_err(|e| anyhow::anyhow!("shredding the forgotten demo customers: {e}"))?;
    }
    bar.finish_and_clear();
    Ok(DemoReport {
        workspace: plan.workspace,
        customers: plan.customers.len(),
        agents: plan.agents.len(),
        events,
        elapsed: started.elapsed(),
        merged: plan
            .merged
            .and_then(|i| plan.customers.get(i as usize))
            .map(|c| c.reference.clone()),
        forgotten: plan
            .forgotten
            .and_then(|i| plan.customers.get(i as usize))
            .map(|c| c.reference.clone()),
    })
}
