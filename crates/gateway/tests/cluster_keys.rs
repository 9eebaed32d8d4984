//! Key sharing between nodes on one PostgreSQL log ([`sijil_gateway::cluster::KeyShare`]):
//! when two nodes make a data key for the same customer at once, the first to publish wins
//! and the other adopts it, so every node opens what any node sealed; a customer forgotten
//! on one node cannot get personal data sealed on another.

#[path = "../../store/tests/pg_support/mod.rs"]
mod pg_support;

use pg_support::PgServer;
use sijil_domain::events::NoteAdded;
use sijil_domain::{CaseId, CustomerId, DomainEvent, NoteId, NoteTarget, Timestamp, WorkspaceId};
use sijil_gateway::bus::BusError;
use sijil_gateway::cluster::KeyShare;
use sijil_store::pg::PgLog;
use sijil_store::vault::{MasterKey, Opened, Vault, VaultError};

fn v7() -> uuid::Uuid {
    uuid::Uuid::now_v7()
}

fn note(customer: CustomerId, text: &str) -> DomainEvent {
    NoteAdded {
        note_id: NoteId::new(v7()).expect("v7"),
        target: NoteTarget::Case(CaseId::new(v7()).expect("v7")),
        customer_id: customer,
        author: None,
        text: text.into(),
        at: Timestamp(1),
    }
    .into()
}

fn text(event: &DomainEvent) -> String {
    match event {
        DomainEvent::NoteAdded(n) => n.text.clone(),
        other => panic!("not a note: {other:?}"),
    }
}

/// A node's vault in its own temporary directory.
fn node_vault(master: &MasterKey) -> (tempfile::TempDir, Vault) {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = sled::open(dir.path().join("db")).expect("sled");
    let vault = Vault::unlock(&db, dir.path().join("vault.kek"), master.clone()).expect("vault");
    (dir, vault)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_that_make_a_key_for_one_customer_at_once_end_up_sharing_one() {
    let pg = PgServer::start();
    let log = PgLog::connect(&pg.create_database("keys"))
        .await
        .expect("connect");
    let master = MasterKey::generate().expect("master key");
    let (ws, customer) = (
        WorkspaceId::new(v7()).expect("v7"),
        CustomerId::new(v7()).expect("v7"),
    );
    let (_a_dir, a) = node_vault(&master);
    let (_b_dir, b) = node_vault(&master);

    // Given two nodes that each sealed a note for the same new customer with a key of its own
    let mut sealed_on_a = note(customer, "seen on A");
    a.seal(&mut sealed_on_a, ws, customer).expect("seal on A");
    let mut sealed_on_b = note(customer, "seen on B");
    b.seal(&mut sealed_on_b, ws, customer).expect("seal on B");
    let mut probe = sealed_on_a.clone();
    assert!(
        b.open(&mut probe, ws, customer).is_err() || text(&probe) != "seen on A",
        "the two keys differ before sharing"
    );

    // When A publishes first and B second
    let share_a = KeyShare::new(log.clone(), a.clone());
    let share_b = KeyShare::new(log.clone(), b.clone());
    assert!(!share_a.publish(ws, &[customer]).await.expect("A publishes"));
    assert!(
        share_b.publish(ws, &[customer]).await.expect("B adopts"),
        "B is told to seal again"
    );

    // Then B holds A's key: it opens what A sealed, and what it seals now opens on A
    let mut opened = sealed_on_a.clone();
    assert_eq!(
        b.open(&mut opened, ws, customer).expect("open"),
        Opened::Readable
    );
    assert_eq!(text(&opened), "seen on A");
    let mut resealed = note(customer, "sealed again on B");
    b.seal(&mut resealed, ws, customer).expect("seal");
    a.open(&mut resealed, ws, customer).expect("open on A");
    assert_eq!(text(&resealed), "sealed again on B");
    // And publishing again changes nothing
    assert!(!share_b.publish(ws, &[customer]).await.expect("again"));

    // When A forgets the customer and shares the tombstone
    a.forget(ws, customer).expect("forget");
    share_a.forget(ws, &[customer]).await.expect("tombstone");
    // Then a third node that sealed for them is refused when it publishes
    let (_c_dir, c) = node_vault(&master);
    let mut late = note(customer, "too late");
    c.seal(&mut late, ws, customer).expect("seal on C");
    let share_c = KeyShare::new(log.clone(), c.clone());
    let refused = share_c.publish(ws, &[customer]).await.expect_err("refused");
    assert!(
        matches!(refused, BusError::Vault(VaultError::Forgotten(_))),
        "{refused:?}"
    );
    assert!(c.is_forgotten(ws, customer).expect("vault"));
}
