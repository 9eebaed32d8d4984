//! Customer mutations: register, update profile, add and remove contact points, change
//! preferences, merge two customers and forget one (erasure). Each answers with the customer
//! read back after the write.

use async_graphql::{Context, ErrorExtensions, InputObject, Object, SimpleObject, ID};
use serde::Serialize;
use sijil_domain as d;
use sijil_domain::customer::{Command, CustomerAggregate};

use super::{typed_id, Write, WriteInfo};
use crate::auth::Permission;
use crate::context::Need;
use crate::error::ApiError;
use crate::schema::customer::{load_required, CustomerNode};
use crate::schema::types::{parse_id, Channel, ContactPointInput};

/// A mutation's result: the write and the customer as they are now.
#[derive(SimpleObject)]
pub struct CustomerPayload {
    pub client_mutation_id: Option<String>,
    pub version: u64,
    pub position: Option<u64>,
    pub replayed: bool,
    #[graphql(guard = "Need(Permission::ReadCustomers)")]
    pub customer: CustomerNode,
}

fn payload(
    write: &Write<'_>,
    outcome: &crate::bus::Outcome,
    id: d::CustomerId,
) -> async_graphql::Result<CustomerPayload> {
    let info = WriteInfo::new(write, outcome);
    Ok(CustomerPayload {
        client_mutation_id: info.client_mutation_id,
        version: info.version,
        position: info.position,
        replayed: info.replayed,
        customer: load_required(write.shared, write.ws, id)?,
    })
}

#[derive(InputObject, Serialize)]
pub struct RegisterCustomerInput {
    pub client_mutation_id: Option<String>,
    /// The business's unique reference (1 to 64 of `[A-Za-z0-9-_]`).
    pub reference: String,
    pub display_name: String,
    /// BCP-47 tag such as `ar`, `en-GB`.
    pub language: String,
    /// IANA time zone such as `Asia/Riyadh`.
    pub time_zone: String,
    #[graphql(default)]
    pub contact_points: Vec<ContactPointInput>,
}

#[derive(InputObject, Serialize)]
pub struct UpdateCustomerProfileInput {
    pub client_mutation_id: Option<String>,
    pub customer_id: ID,
    pub expected_version: Option<u64>,
    pub display_name: Option<String>,
    pub time_zone: Option<String>,
}

#[derive(InputObject, Serialize)]
pub struct ContactPointChangeInput {
    pub client_mutation_id: Option<String>,
    pub customer_id: ID,
    pub expected_version: Option<u64>,
    pub contact_point: ContactPointInput,
}

#[derive(InputObject, Serialize)]
pub struct ChangeCustomerPreferencesInput {
    pub client_mutation_id: Option<String>,
    pub customer_id: ID,
    pub expected_version: Option<u64>,
    pub language: Option<String>,
    pub preferred_channel: Option<Channel>,
    pub consent_to_contact: Option<bool>,
}

#[derive(InputObject, Serialize)]
pub struct MergeCustomersInput {
    pub client_mutation_id: Option<String>,
    /// The duplicate identity, merged away.
    pub source_id: ID,
    /// The survivor.
    pub into_id: ID,
    /// The source customer's stream version.
    pub expected_version: Option<u64>,
}

#[derive(InputObject, Serialize)]
pub struct ForgetCustomerInput {
    pub client_mutation_id: Option<String>,
    pub customer_id: ID,
    pub expected_version: Option<u64>,
    /// The erasure request's own reference (never personal data).
    pub request_reference: String,
}

/// Customer mutations.
#[derive(Default)]
pub struct CustomerMutation;

#[Object]
impl CustomerMutation {
    /// Registers a new customer; the server mints the id.
    async fn register_customer(
        &self,
        ctx: &Context<'_>,
        input: RegisterCustomerInput,
    ) -> async_graphql::Result<CustomerPayload> {
        let write = Write::start(
            ctx,
            Permission::WriteCustomers,
            "registerCustomer",
            input.client_mutation_id.as_deref(),
            None,
            &input,
        )?;
        let uuid = write.mint().await?;
        let id = typed_id(uuid, d::CustomerId::new)?;
        let command = Command::Register {
            customer_id: id,
            reference: input.reference,
            display_name: input.display_name,
            language: input.language,
            time_zone: input.time_zone,
            contact_points: input.contact_points.iter().map(Into::into).collect(),
            at: write.now,
        };
        let outcome = write
            .run::<CustomerAggregate>(d::StreamRef::Customer(id), command, None, Some(uuid))
            .await?;
        payload(&write, &outcome, id)
    }

    /// Changes a customer's name and/or time zone.
    async fn update_customer_profile(
        &self,
        ctx: &Context<'_>,
        input: UpdateCustomerProfileInput,
    ) -> async_graphql::Result<CustomerPayload> {
        let write = Write::start(
            ctx,
            Permission::WriteCustomers,
            "updateCustomerProfile",
            input.client_mutation_id.as_deref(),
            input.expected_version,
            &input,
        )?;
        let id = parse_id(&input.customer_id, d::CustomerId::parse, "customerId")?;
        let command = Command::UpdateProfile {
            display_name: input.display_name,
            time_zone: input.time_zone,
            at: write.now,
        };
        let outcome = write
            .run::<CustomerAggregate>(
                d::StreamRef::Customer(id),
                command,
                input.expected_version,
                None,
            )
            .await?;
        payload(&write, &outcome, id)
    }

    /// Adds a way to reach the customer.
    async fn add_contact_point(
        &self,
        ctx: &Context<'_>,
        input: ContactPointChangeInput,
    ) -> async_graphql::Result<CustomerPayload> {
        let write = Write::start(
            ctx,
            Permission::WriteCustomers,
            "addContactPoint",
            input.client_mutation_id.as_deref(),
            input.expected_version,
            &input,
        )?;
        let id = parse_id(&input.customer_id, d::CustomerId::parse, "customerId")?;
        let command = Command::AddContactPoint {
            contact_point: (&input.contact_point).into(),
            at: write.now,
        };
        let outcome = write
            .run::<CustomerAggregate>(
                d::StreamRef::Customer(id),
                command,
                input.expected_version,
                None,
            )
            .await?;
        payload(&write, &outcome, id)
    }

    /// Removes a way to reach the customer.
    async fn remove_contact_point(
        &self,
        ctx: &Context<'_>,
        input: ContactPointChangeInput,
    ) -> async_graphql::Result<CustomerPayload> {
        let write = Write::start(
            ctx,
            Permission::WriteCustomers,
            "removeContactPoint",
            input.client_mutation_id.as_deref(),
            input.expected_version,
            &input,
        )?;
        let id = parse_id(&input.customer_id, d::CustomerId::parse, "customerId")?;
        let command = Command::RemoveContactPoint {
            contact_point: (&input.contact_point).into(),
            at: write.now,
        };
        let outcome = write
            .run::<CustomerAggregate>(
                d::StreamRef::Customer(id),
                command,
                input.expected_version,
                None,
            )
            .await?;
        payload(&write, &outcome, id)
    }

    /// Changes language, preferred channel and/or consent to contact.
    async fn change_customer_preferences(
        &self,
        ctx: &Context<'_>,
        input: ChangeCustomerPreferencesInput,
    ) -> async_graphql::Result<CustomerPayload> {
        let write = Write::start(
            ctx,
            Permission::WriteCustomers,
            "changeCustomerPreferences",
            input.client_mutation_id.as_deref(),
            input.expected_version,
            &input,
        )?;
        let id = parse_id(&input.customer_id, d::CustomerId::parse, "customerId")?;
        let command = Command::ChangePreferences {
            language: input.language,
            preferred_channel: input.preferred_channel.map(Into::into),
            consent_to_contact: input.consent_to_contact,
            at: write.now,
        };
        let outcome = write
            .run::<CustomerAggregate>(
                d::StreamRef::Customer(id),
                command,
                input.expected_version,
                None,
            )
            .await?;
        payload(&write, &outcome, id)
    }

    /// Merges a duplicate customer into a survivor, whose timeline then holds both histories.
    /// Answers with the survivor.
    async fn merge_customers(
        &self,
        ctx: &Context<'_>,
        input: MergeCustomersInput,
    ) -> async_graphql::Result<CustomerPayload> {
        let write = Write::start(
            ctx,
            Permission::MergeCustomers,
            "mergeCustomers",
            input.client_mutation_id.as_deref(),
            input.expected_version,
            &input,
        )?;
        let source = parse_id(&input.source_id, d::CustomerId::parse, "sourceId")?;
        let into = parse_id(&input.into_id, d::CustomerId::parse, "intoId")?;
        let command = Command::Merge {
            into,
            target: write.customer_status(into)?,
            at: write.now,
        };
        let outcome = write
            .run::<CustomerAggregate>(
                d::StreamRef::Customer(source),
                command,
                input.expected_version,
                None,
            )
            .await?;
        payload(&write, &outcome, into)
    }

    /// Erases a customer's personal data (GDPR); the facts of service remain. Idempotent.
    async fn forget_customer(
        &self,
        ctx: &Context<'_>,
        input: ForgetCustomerInput,
    ) -> async_graphql::Result<CustomerPayload> {
        let write = Write::start(
            ctx,
            Permission::ForgetCustomers,
            "forgetCustomer",
            input.client_mutation_id.as_deref(),
            input.expected_version,
            &input,
        )?;
        let id = parse_id(&input.customer_id, d::CustomerId::parse, "customerId")?;
        let command = Command::Forget {
            request_reference: input.request_reference,
            at: write.now,
        };
        let outcome = write
            .run::<CustomerAggregate>(
                d::StreamRef::Customer(id),
                command,
                input.expected_version,
                None,
            )
            .await?;
        // The `CustomerForgotten` event is durable: now destroy the keys (also of customers
        // merged into this one). Also on a repeat, which finishes an interrupted forget.
        if let Some(vault) = write.shared.vault.clone() {
            let store = write.shared.store.clone();
            let ws = write.ws;
            let forgot = tokio::task::spawn_blocking(move || {
                crate::shredding::forget(&vault, &store, ws, id)
            })
            .await
            .map_err(|e| ApiError::internal(e).extend())?
            .map_err(|e| ApiError::from(e).extend())?;
            // No state kept from a load shows their personal data any more.
            for (customer, _) in &forgot {
                write.shared.bus.snapshots().forget(*customer);
            }
            // Other nodes destroy their copies when they copy the event; the shared row
            // becomes a tombstone so no node ever fetches the key again.
            if let Some(keys) = write.shared.bus.key_share() {
                let ids: Vec<d::CustomerId> = forgot.iter().map(|(c, _)| *c).collect();
                keys.forget(ws, &ids)
                    .await
                    .map_err(|e| ApiError::from(e).extend())?;
            }
        }
        payload(&write, &outcome, id)
    }
}
