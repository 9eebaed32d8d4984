//! The vault end to end: sealing and opening every event type, forgetting (erased reads, other
//! customers untouched, twice is harmless, survives a restart), master key checks at unlock,
//! ciphertexts bound to their customer, workspace and field, and a byte scan of a real store's
//! whole data directory finding no personal plaintext after a forget.

use std::path::{Path, PathBuf};

use sijil_domain::events::*;
use sijil_domain::personal;
use sijil_domain::*;
use sijil_store::projections::codec::{decode_event, encode_event};
use sijil_store::vault::{Forgot, MasterKey, Opened, Vault, VaultError, ERASED, SEALED_PREFIX};
use sijil_store::{ExpectedVersion, NewEvent, Store};

fn id(n: u8) -> uuid::Uuid {
    uuid::Builder::from_unix_timestamp_millis(1_700_000_000_000, &[n; 10]).into_uuid()
}

fn ws() -> WorkspaceId {
    WorkspaceId::new(id(100)).expect("v7")
}

/// The personal strings of one sample customer.
struct Person {
    customer: CustomerId,
    name: &'static str,
    email: &'static str,
    phone: &'static str,
}

fn amina() -> Person {
    Person {
        customer: CustomerId::new(id(1)).expect("v7"),
        name: "أمينة الحربي",
        email: "amina.harbi@example.com",
        phone: "+966500001111",
    }
}

fn badr() -> Person {
    Person {
        customer: CustomerId::new(id(51)).expect("v7"),
        name: "Badr Al-Qahtani",
        email: "badr.q@example.org",
        phone: "+966500002222",
    }
}

/// One event of every type about `p` (ids offset by `n` so two people do not share any).
fn samples(p: &Person, n: u8) -> Vec<DomainEvent> {
    let customer = p.customer;
    let case = CaseId::new(id(n + 2)).expect("v7");
    let interaction = InteractionId::new(id(n + 3)).expect("v7");
    let agent = AgentId::new(id(n + 4)).expect("v7");
    let team = TeamId::new(id(n + 5)).expect("v7");
    let survey = SurveyId::new(id(n + 6)).expect("v7");
    let follow_up = FollowUpId::new(id(n + 7)).expect("v7");
    let at = Timestamp(1_700_000_000_000);
    vec![
        CustomerRegistered {
            customer_id: customer,
            reference: format!("CUST-{n}"),
            display_name: p.name.into(),
            language: "ar-SA".into(),
            time_zone: "Asia/Riyadh".into(),
            contact_points: vec![
                ContactPoint {
                    kind: ContactKind::Email,
                    value: p.email.into(),
                },
                ContactPoint {
                    kind: ContactKind::Phone,
                    value: p.phone.into(),
                },
            ],
            at,
        }
        .into(),
        CustomerProfileUpdated {
            customer_id: customer,
            display_name: Some(format!("{} (new)", p.name)),
            time_zone: None,
            at,
        }
        .into(),
        ContactPointAdded {
            customer_id: customer,
            contact_point: ContactPoint {
                kind: ContactKind::Messaging,
                value: format!("whatsapp:{}", p.phone),
            },
            at,
        }
        .into(),
        ContactPointRemoved {
            customer_id: customer,
            contact_point: ContactPoint {
                kind: ContactKind::Email,
                value: p.email.into(),
            },
            at,
        }
        .into(),
        CustomerPreferencesChanged {
            customer_id: customer,
            language: Some("en".into()),
            preferred_channel: Some(Channel::Email),
            consent_to_contact: Some(false),
            at,
        }
        .into(),
        CustomerMerged {
            customer_id: customer,
            into: CustomerId::new(id(n + 10)).expect("v7"),
            at,
        }
        .into(),
        CustomerForgotten {
            customer_id: customer,
            request_reference: "DSR-7".into(),
            at,
        }
        .into(),
        InteractionRecorded {
            interaction_id: interaction,
            customer_id: customer,
            channel: Channel::Phone,
            direction: Direction::Inbound,
            handled_by: Handler::Bot("ivr".into()),
            language: "ar".into(),
            summary: format!("{} called from {} about her card", p.name, p.phone),
            duration_seconds: 60,
            case_id: Some(case),
            recording_ref: Some(format!("rec/{}", p.phone)),
            at,
        }
        .into(),
        NoteAdded {
            note_id: NoteId::new(id(n + 8)).expect("v7"),
            target: NoteTarget::Case(case),
            customer_id: customer,
            author: Some(agent),
            text: format!("emailed {}", p.email),
            at,
        }
        .into(),
        CaseOpened {
            case_id: case,
            customer_id: customer,
            subject: format!("Card of {} declined", p.name),
            category: "payments".into(),
            priority: Priority::High,
            channel: Channel::Phone,
            sla: SlaPolicy {
                first_response_minutes: 15,
                resolution_minutes: 240,
            },
            top_level: 3,
            at,
        }
        .into(),
        CaseAssigned {
            case_id: case,
            agent: Some(agent),
            team: Some(team),
            at,
        }
        .into(),
        FirstResponseGiven {
            case_id: case,
            agent: Some(agent),
            channel: Channel::Email,
            at,
        }
        .into(),
        CaseEscalated {
            case_id: case,
            from_level: 1,
            to_level: 2,
            reason: format!("{} is a VIP", p.name),
            team: Some(team),
            at,
        }
        .into(),
        CaseDeescalated {
            case_id: case,
            from_level: 2,
            to_level: 1,
            reason: "handled".into(),
            team: None,
            at,
        }
        .into(),
        SlaBreached {
            case_id: case,
            target: SlaTarget::Resolution,
            due_at: at,
            overdue_ms: 1,
            at,
        }
        .into(),
        CaseResolved {
            case_id: case,
            resolution: format!("called {} back", p.phone),
            root_cause: String::new(),
            first_contact_resolution: false,
            agent: Some(agent),
            at,
        }
        .into(),
        CaseReopened {
            case_id: case,
            reason: "again".into(),
            at,
        }
        .into(),
        CaseClosed { case_id: case, at }.into(),
        SurveyAnswered {
            survey_id: survey,
            customer_id: customer,
            subject: FeedbackSubject::Case(case),
            score: Score::Csat(2),
            comment: Some(format!("I am {} and it was slow", p.name)),
            at,
        }
        .into(),
        FollowUpScheduled {
            follow_up_id: follow_up,
            customer_id: customer,
            reason: FollowUpReason::CheckAfterFix,
            related: Some(FollowUpRelation::Case(case)),
            due_at: at,
            agent: None,
            team: Some(team),
            note: Some(format!("call {}", p.phone)),
            at,
        }
        .into(),
        FollowUpCompleted {
            follow_up_id: follow_up,
            outcome: "fine".into(),
            agent: None,
            at,
        }
        .into(),
        FollowUpCancelled {
            follow_up_id: follow_up,
            reason: "duplicate".into(),
            at,
        }
        .into(),
        AgentRegistered {
            agent_id: agent,
            display_name: "Omar".into(),
            teams: vec![team],
            at,
        }
        .into(),
        AgentRecognised {
            recognition_id: RecognitionId::new(id(n + 9)).expect("v7"),
            agent_id: agent,
            by: AgentId::new(id(n + 11)).expect("v7"),
            reason: "great".into(),
            reward: Reward::Kudos,
            basis: RecognitionBasis::Case(case),
            at,
        }
        .into(),
    ]
}

fn master() -> MasterKey {
    MasterKey::from_hex(&"4f".repeat(32)).expect("64 hex chars")
}

fn other_master() -> MasterKey {
    MasterKey::from_hex(&"a0".repeat(32)).expect("64 hex chars")
}

struct Dir {
    dir: tempfile::TempDir,
}

impl Dir {
    fn new() -> Dir {
        Dir {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }
    fn db_path(&self) -> PathBuf {
        self.dir.path().join("store")
    }
    fn kek_path(&self) -> PathBuf {
        self.dir.path().join("vault.kek")
    }
}

fn db(dir: &Dir) -> sled::Db {
    sled::open(dir.db_path()).expect("sled")
}

fn sealed_all(vault: &Vault, events: &[DomainEvent], customer: CustomerId) -> Vec<DomainEvent> {
    events
        .iter()
        .map(|event| {
            let mut sealed = event.clone();
            vault.seal(&mut sealed, ws(), customer).expect("seal");
            sealed
        })
        .collect()
}

#[test]
fn seal_then_open_round_trips_every_event_type() {
    let dir = Dir::new();
    let vault = Vault::unlock(&db(&dir), dir.kek_path(), master()).expect("unlock");
    let amina = amina();
    let events = samples(&amina, 0);
    assert_eq!(events.len(), EVENT_TYPES.len(), "one sample per type");
    for original in &events {
        // Given an event, when it is sealed,
        let mut sealed = original.clone();
        vault.seal(&mut sealed, ws(), amina.customer).expect("seal");
        // then every personal field is a tagged ciphertext and nothing else changed,
        let plain = personal::personal_values(original);
        let ciphers = personal::personal_values(&sealed);
        assert_eq!(plain.len(), ciphers.len());
        for ((field, p), (_, c)) in plain.iter().zip(&ciphers) {
            assert!(c.starts_with(SEALED_PREFIX), "{field:?}: {c}");
            if !p.is_empty() {
                assert!(!c.contains(p.as_str()), "{field:?} leaks its plaintext");
            }
        }
        let mut erased_original = original.clone();
        let mut erased_sealed = sealed.clone();
        personal::erase(&mut erased_original);
        personal::erase(&mut erased_sealed);
        assert_eq!(erased_sealed, erased_original, "{}", original.event_type());
        // sealing twice gives different ciphertexts (random nonces),
        let mut again = original.clone();
        vault.seal(&mut again, ws(), amina.customer).expect("seal");
        if !plain.is_empty() {
            assert_ne!(again, sealed);
        }
        // the sealed event goes through the store's payload codec,
        let payload = encode_event(&sealed);
        let mut stored = decode_via_codec(&sealed, payload);
        assert_eq!(stored, sealed);
        // and opening gives the original back.
        assert_eq!(
            vault.open(&mut stored, ws(), amina.customer).expect("open"),
            Opened::Readable
        );
        assert_eq!(&stored, original);
    }
}

fn decode_via_codec(event: &DomainEvent, payload: Vec<u8>) -> DomainEvent {
    let recorded = sijil_store::RecordedEvent {
        position: 1,
        stream_id: event.stream().stream_id(),
        version: 1,
        event_id: id(200),
        workspace_id: ws().as_uuid(),
        event_type: event.event_type().into(),
        schema_version: event.schema_version(),
        occurred_at: 0,
        recorded_at: 0,
        actor: "test".into(),
        on_behalf_of: None,
        correlation_id: None,
        causation_id: None,
        payload,
        prev_hash: [0; 32],
        hash: [0; 32],
    };
    decode_event(&recorded).expect("decodes")
}

#[test]
fn forgetting_erases_one_customer_only_and_twice_is_harmless() {
    let dir = Dir::new();
    let db = db(&dir);
    let vault = Vault::unlock(&db, dir.kek_path(), master()).expect("unlock");
    let (amina, badr) = (amina(), badr());
    let (events_a, events_b) = (samples(&amina, 0), samples(&badr, 50));
    let sealed_a = sealed_all(&vault, &events_a, amina.customer);
    let sealed_b = sealed_all(&vault, &events_b, badr.customer);

    // When Amina is forgotten,
    assert_eq!(
        vault.forget(ws(), amina.customer).expect("forget"),
        Forgot::KeyDestroyed
    );
    let check = |vault: &Vault| {
        // then her events read as erased, with every other field intact,
        for (sealed, original) in sealed_a.iter().zip(&events_a) {
            let mut read = sealed.clone();
            assert_eq!(
                vault.open(&mut read, ws(), amina.customer).expect("open"),
                Opened::Erased
            );
            let mut expected = original.clone();
            personal::erase(&mut expected);
            assert_eq!(read, expected);
            for (_, value) in personal::personal_values(&read) {
                assert_eq!(value, ERASED);
            }
        }
        // and Badr's still open.
        for (sealed, original) in sealed_b.iter().zip(&events_b) {
            let mut read = sealed.clone();
            vault.open(&mut read, ws(), badr.customer).expect("open");
            assert_eq!(&read, original);
        }
        assert!(vault.is_forgotten(ws(), amina.customer).expect("read"));
        assert!(!vault.is_forgotten(ws(), badr.customer).expect("read"));
    };
    check(&vault);

    // No new personal data can be sealed for her; events without any still pass.
    let mut note = events_a[8].clone();
    let err = vault
        .seal(&mut note, ws(), amina.customer)
        .expect_err("forgotten");
    assert_eq!(err.code(), "CUSTOMER_FORGOTTEN");
    assert_eq!(note, events_a[8], "a refused seal leaves the event alone");
    let mut closed = events_a[17].clone();
    vault
        .seal(&mut closed, ws(), amina.customer)
        .expect("no personal fields");
    assert_eq!(closed, events_a[17]);

    // Forgetting twice is harmless; forgetting someone who never had a key marks them.
    assert_eq!(
        vault.forget(ws(), amina.customer).expect("again"),
        Forgot::AlreadyForgotten
    );
    let stranger = CustomerId::new(id(99)).expect("v7");
    assert_eq!(
        vault.forget(ws(), stranger).expect("forget"),
        Forgot::NoKeyHeld
    );
    assert_eq!(
        vault.forget(ws(), stranger).expect("again"),
        Forgot::AlreadyForgotten
    );
    check(&vault);

    // And all of it holds after a restart.
    drop(vault);
    let vault = Vault::unlock(&db, dir.kek_path(), master()).expect("unlock again");
    check(&vault);
    assert_eq!(
        vault.forget(ws(), amina.customer).expect("after restart"),
        Forgot::AlreadyForgotten
    );
}

#[test]
fn a_wrong_master_key_is_refused_and_changes_nothing() {
    let dir = Dir::new();
    let db = db(&dir);
    let amina = amina();
    let mut event = samples(&amina, 0).remove(0);
    let original = event.clone();
    {
        let vault = Vault::unlock(&db, dir.kek_path(), master()).expect("unlock");
        vault.seal(&mut event, ws(), amina.customer).expect("seal");
    }
    let err = Vault::unlock(&db, dir.kek_path(), other_master()).expect_err("wrong key");
    assert_eq!(err.code(), "MASTER_KEY_WRONG");
    assert!(matches!(err, VaultError::WrongMasterKey { .. }));
    assert!(err.to_string().contains("wrong master key"), "{err}");
    let vault = Vault::unlock(&db, dir.kek_path(), master()).expect("right key still works");
    vault.open(&mut event, ws(), amina.customer).expect("open");
    assert_eq!(event, original);
}

#[test]
fn a_missing_or_malformed_master_key_is_refused_with_a_clear_message() {
    let err = MasterKey::from_config(None, None).expect_err("missing");
    assert_eq!(err.code(), "MASTER_KEY_MISSING");
    assert!(err.to_string().contains("SIJIL_MASTER_KEY"), "{err}");
    for bad in ["", "abc", &"g".repeat(64), &"ab".repeat(33)] {
        let err = MasterKey::from_hex(bad).expect_err("malformed");
        assert_eq!(err.code(), "MASTER_KEY_INVALID", "{bad:?}");
    }
    let dir = Dir::new();
    let file = dir.dir.path().join("master.key");
    std::fs::write(&file, format!("{}\n", "4f".repeat(32))).expect("write");
    let from_file = MasterKey::from_config(None, Some(&file)).expect("file");
    assert_eq!(*from_file.to_hex(), "4f".repeat(32));
    assert!(
        !format!("{from_file:?}").contains("4f4f"),
        "Debug hides the key"
    );
    let err = MasterKey::from_config(Some(&"4f".repeat(32)), Some(&file)).expect_err("both");
    assert_eq!(err.code(), "MASTER_KEY_INVALID");
    let err = MasterKey::from_file(&dir.dir.path().join("nope")).expect_err("no file");
    assert_eq!(err.code(), "MASTER_KEY_INVALID");
    assert!(err.to_string().contains("nope"), "{err}");
}

#[test]
fn a_missing_key_file_is_refused_once_keys_exist() {
    let dir = Dir::new();
    let db = db(&dir);
    {
        let vault = Vault::unlock(&db, dir.kek_path(), master()).expect("unlock");
        let amina = amina();
        vault
            .seal(&mut samples(&amina, 0).remove(0), ws(), amina.customer)
            .expect("seal");
        vault.flush().expect("flush");
    }
    std::fs::remove_file(dir.kek_path()).expect("remove");
    let err = Vault::unlock(&db, dir.kek_path(), master()).expect_err("file missing");
    assert_eq!(err.code(), "VAULT_KEY_FILE_MISSING");
    assert!(
        !dir.kek_path().exists(),
        "no new key file is made over existing keys"
    );
}

#[test]
fn ciphertexts_are_bound_to_their_customer_workspace_and_field() {
    let dir = Dir::new();
    let vault = Vault::unlock(&db(&dir), dir.kek_path(), master()).expect("unlock");
    let (amina, badr) = (amina(), badr());
    let registered = samples(&amina, 0).remove(0);
    let mut sealed = registered.clone();
    vault.seal(&mut sealed, ws(), amina.customer).expect("seal");
    vault
        .seal(&mut samples(&badr, 50).remove(0), ws(), badr.customer)
        .expect("badr has a key");

    // Opened as another customer who has a key: refused.
    let err = vault
        .open(&mut sealed.clone(), ws(), badr.customer)
        .expect_err("not badr's");
    assert_eq!(err.code(), "VAULT_UNDECRYPTABLE");
    // Opened in another workspace, where the customer has no key: refused.
    let elsewhere = WorkspaceId::new(id(101)).expect("v7");
    let err = vault
        .open(&mut sealed.clone(), elsewhere, amina.customer)
        .expect_err("no key there");
    assert_eq!(err.code(), "VAULT_NO_KEY");
    // A display name's ciphertext moved into the reference field: refused.
    let DomainEvent::CustomerRegistered(mut swapped) = sealed.clone() else {
        panic!("sample 0 is a registration")
    };
    swapped.reference = swapped.display_name.clone();
    let err = vault
        .open(&mut swapped.into(), ws(), amina.customer)
        .expect_err("wrong field");
    assert_eq!(err.code(), "VAULT_UNDECRYPTABLE");
    // A tampered ciphertext: refused.
    let DomainEvent::CustomerRegistered(mut tampered) = sealed.clone() else {
        panic!("sample 0 is a registration")
    };
    let last = tampered.display_name.pop().expect("non-empty");
    tampered
        .display_name
        .push(if last == 'A' { 'B' } else { 'A' });
    let err = vault
        .open(&mut tampered.into(), ws(), amina.customer)
        .expect_err("tampered");
    assert_eq!(err.code(), "VAULT_UNDECRYPTABLE");
    // Fields never sealed (written before sealing existed) are left as they are.
    let mut legacy = registered.clone();
    vault.open(&mut legacy, ws(), amina.customer).expect("open");
    assert_eq!(legacy, registered);
    // And the right customer opens it.
    vault.open(&mut sealed, ws(), amina.customer).expect("open");
    assert_eq!(sealed, registered);
}

#[test]
fn links_resolve_case_and_follow_up_events_to_their_customer() {
    let dir = Dir::new();
    let vault = Vault::unlock(&db(&dir), dir.kek_path(), master()).expect("unlock");
    let amina = amina();
    let events = samples(&amina, 0);
    for event in &events {
        vault.record_link(ws(), event).expect("link");
    }
    for event in &events {
        let subject = personal::data_subject(event);
        let expected = match event.event_type() {
            "AgentRegistered" | "AgentRecognised" => None,
            _ => Some(amina.customer),
        };
        assert_eq!(
            vault.resolve(ws(), subject).expect("resolve"),
            expected,
            "{}",
            event.event_type()
        );
    }
    let unknown = CaseId::new(id(250)).expect("v7");
    assert_eq!(
        vault
            .resolve(ws(), personal::DataSubject::CustomerOfCase(unknown))
            .expect("resolve"),
        None
    );
    let other_ws = WorkspaceId::new(id(101)).expect("v7");
    let case_event = &events[12];
    assert_eq!(
        vault
            .resolve(other_ws, personal::data_subject(case_event))
            .expect("resolve"),
        None,
        "links do not cross workspaces"
    );
}

/// Every file under `dir`, recursively.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// The files under `dir` whose bytes contain `needle`.
fn scan(dir: &Path, needle: &str) -> Vec<PathBuf> {
    files(dir)
        .into_iter()
        .filter(|path| {
            let bytes = std::fs::read(path).expect("read file");
            bytes
                .windows(needle.len())
                .any(|window| window == needle.as_bytes())
        })
        .collect()
}

fn new_event(event: &DomainEvent, n: u16) -> NewEvent {
    NewEvent {
        event_id: uuid::Builder::from_unix_timestamp_millis(
            1_700_000_000_000 + u64::from(n),
            &[7; 10],
        )
        .into_uuid(),
        workspace_id: ws().as_uuid(),
        event_type: event.event_type().into(),
        schema_version: event.schema_version(),
        occurred_at: event.occurred_at().0,
        actor: "system:test".into(),
        on_behalf_of: None,
        correlation_id: None,
        causation_id: None,
        payload: encode_event(event),
    }
}

#[tokio::test]
async fn a_byte_scan_of_the_data_directory_after_forgetting_finds_no_personal_plaintext() {
    // Given a real store whose events were sealed before they were appended,
    let dir = Dir::new();
    let store = Store::open(dir.db_path()).expect("open store");
    let vault = Vault::unlock(store.db(), dir.kek_path(), master()).expect("unlock");
    let (amina, badr) = (amina(), badr());
    let mut n = 0u16;
    for (person, offset) in [(&amina, 0), (&badr, 50)] {
        for event in samples(person, offset) {
            let subject = personal::data_subject(&event);
            vault.record_link(ws(), &event).expect("link");
            let customer = vault
                .resolve(ws(), subject)
                .expect("resolve")
                .unwrap_or(person.customer);
            let mut sealed = event.clone();
            vault.seal(&mut sealed, ws(), customer).expect("seal");
            n += 1;
            store
                .append(
                    &sealed.stream().stream_id(),
                    ExpectedVersion::Any,
                    vec![new_event(&sealed, n)],
                )
                .await
                .expect("append");
        }
    }
    // and a control written in plaintext (agent names are not customer data),
    let control = "ControlAgentName-ZQX";
    let agent_event: DomainEvent = AgentRegistered {
        agent_id: AgentId::new(id(240)).expect("v7"),
        display_name: control.into(),
        teams: vec![],
        at: Timestamp(1),
    }
    .into();
    store
        .append(
            &agent_event.stream().stream_id(),
            ExpectedVersion::Any,
            vec![new_event(&agent_event, 999)],
        )
        .await
        .expect("append");

    // when Amina is forgotten and everything is flushed,
    assert_eq!(
        vault.forget(ws(), amina.customer).expect("forget"),
        Forgot::KeyDestroyed
    );
    store.db().flush().expect("flush");

    // then the scan sees sled's files (the control is found),
    assert!(
        !scan(dir.dir.path(), control).is_empty(),
        "the scan reads sled data"
    );
    // but none of Amina's (or Badr's) personal plaintext is anywhere in the directory,
    for person in [&amina, &badr] {
        for needle in [person.name, person.email, person.phone] {
            assert_eq!(
                scan(dir.dir.path(), needle),
                Vec::<PathBuf>::new(),
                "{needle}"
            );
        }
    }
    // the log still verifies (hashes cover the ciphertext),
    let report = store.verify().expect("verify");
    assert!(report.is_ok(), "{report:?}");
    // and reading the log back shows Amina erased and Badr readable.
    let log = store.read_all(1, 1_000, None).expect("read");
    let mut erased = 0;
    let mut readable = 0;
    for recorded in &log {
        let mut event = decode_event(recorded).expect("decode");
        let Some(customer) = vault
            .resolve(ws(), personal::data_subject(&event))
            .expect("resolve")
        else {
            continue;
        };
        if !personal::has_personal(&event) {
            continue;
        }
        match vault.open(&mut event, ws(), customer).expect("open") {
            Opened::Erased => {
                assert_eq!(customer, amina.customer);
                erased += 1;
            }
            Opened::Readable => {
                assert_eq!(customer, badr.customer);
                let text = format!("{event:?}");
                assert!(!text.contains(amina.name));
                readable += 1;
            }
        }
    }
    assert_eq!(
        (erased, readable),
        (15, 15),
        "15 event types hold personal data"
    );
}
