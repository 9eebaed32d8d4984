//! Criterion benchmarks of the vault's per-field work: sealing one personal text (what every
//! write with personal data pays) and opening one (what every timeline entry with a sealed
//! summary costs a reader), for a short text of 40 characters and one of 150 (a timeline
//! summary shows at most 160).

use criterion::{criterion_group, criterion_main, Criterion};
use sijil_domain::events::NoteAdded;
use sijil_domain::personal::PersonalField;
use sijil_domain::{CaseId, CustomerId, DomainEvent, NoteId, NoteTarget, Timestamp, WorkspaceId};
use sijil_store::vault::{MasterKey, Vault};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Note `ids.2` about customer `ids.0` on case `ids.1`, holding `text`, its one personal
/// field.
fn note(ids: (CustomerId, CaseId, NoteId), text: &str) -> DomainEvent {
    let (customer, case, note_id) = ids;
    DomainEvent::NoteAdded(NoteAdded {
        note_id,
        target: NoteTarget::Case(case),
        customer_id: customer,
        author: None,
        text: text.into(),
        at: Timestamp(1),
    })
}

fn sealed_text(event: &DomainEvent) -> String {
    match event {
        DomainEvent::NoteAdded(n) => n.text.clone(),
        _ => unreachable!("a note"),
    }
}

fn vault(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = sled::open(dir.path().join("db")).expect("sled");
    let master = MasterKey::generate().expect("random");
    let vault = Vault::unlock(&db, dir.path().join("vault.kek"), master).expect("unlock");
    let ws = WorkspaceId::new(uuid::Uuid::now_v7()).expect("v7");
    let customer = CustomerId::new(uuid::Uuid::now_v7()).expect("v7");
    let case = CaseId::new(uuid::Uuid::now_v7()).expect("v7");
    let ids = (
        customer,
        case,
        NoteId::new(uuid::Uuid::now_v7()).expect("v7"),
    );
    let mut group = c.benchmark_group("vault");
    for chars in [40, 150] {
        let text = "x".repeat(chars);
        group.bench_function(format!("seal a {chars}-character text"), |b| {
            b.iter(|| {
                let mut event = note(ids, &text);
                vault.seal(&mut event, ws, customer).expect("seal");
                event
            })
        });
        let mut event = note(ids, &text);
        vault.seal(&mut event, ws, customer).expect("seal");
        let sealed = sealed_text(&event);
        group.bench_function(format!("open a {chars}-character text"), |b| {
            b.iter(|| {
                let opened = vault
                    .open_text(ws, customer, PersonalField::NoteText, &sealed)
                    .expect("open");
                assert_eq!(opened.len(), chars);
                opened
            })
        });
    }
    group.finish();
}

criterion_group!(benches, vault);
criterion_main!(benches);
