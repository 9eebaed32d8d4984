//! [`ServedSchema`]: the schema as the server executes it, over HTTP and WebSocket. Around
//! each operation it gives every error a code ([`crate::codes::tag_untyped_errors`]) and
//! holds every WebSocket operation to the [`SubscriptionLimits`].
//!
//! Both used to be schema extensions. As soon as one extension is installed, async-graphql
//! sends the resolution of every field and every list item of a response through the
//! extension chain (a boxed future per field and extension, and a registry lookup of the
//! field's type), although neither extension looked at fields. Wrapping the executor costs
//! once per operation instead.

use std::any::{Any, TypeId};
use std::sync::Arc;

use async_graphql::{Data, ErrorExtensions, Executor, Pos, Request, Response};
use futures_util::stream::{self, BoxStream, StreamExt};

use crate::auth::Principal;
use crate::codes::tag_untyped_errors;
use crate::schema::SijilSchema;
use crate::subscription_limits::{ConnectionSubscriptions, SubscriptionLimits};

/// The schema with the error codes and subscription limits around it. Cheap to clone.
#[derive(Clone)]
pub struct ServedSchema {
    schema: SijilSchema,
    subscriptions: Arc<SubscriptionLimits>,
}

impl ServedSchema {
    /// `schema`, whose WebSocket operations are held to `subscriptions`.
    pub fn new(schema: SijilSchema, subscriptions: Arc<SubscriptionLimits>) -> ServedSchema {
        ServedSchema {
            schema,
            subscriptions,
        }
    }

    /// Executes a query or mutation; every error in the answer has a code.
    pub async fn execute(&self, request: Request) -> Response {
        let mut response = self.schema.execute(request).await;
        tag_untyped_errors(&mut response.errors);
        response
    }

    /// Executes an operation sent over a WebSocket (usually a subscription) with the
    /// connection's `session_data`. The operation is admitted by the subscription limits
    /// first and holds its place until its stream is dropped; a refused one answers a single
    /// error and ends. Without a principal the resolvers refuse it themselves
    /// (UNAUTHENTICATED), and there is no token to count it against.
    pub fn execute_stream(
        &self,
        request: Request,
        session_data: Option<Arc<Data>>,
    ) -> BoxStream<'static, Response> {
        let principal = find::<Principal>(&request.data, session_data.as_deref()).cloned();
        let connection =
            find::<Arc<ConnectionSubscriptions>>(&request.data, session_data.as_deref()).cloned();
        let ticket = match principal {
            None => None,
            Some(principal) => match self.subscriptions.admit(&principal, connection.as_ref()) {
                Ok(ticket) => Some(ticket),
                Err(refusal) => {
                    tracing::info!(
                        token = %principal.token_id,
                        outcome = refusal.code().as_str(),
                        "subscription refused"
                    );
                    let error = refusal.extend().into_server_error(Pos::default());
                    return stream::once(async move { Response::from_errors(vec![error]) }).boxed();
                }
            },
        };
        self.schema
            .execute_stream_with_session_data(request, session_data.unwrap_or_default())
            .map(move |mut response| {
                let _held = &ticket;
                tag_untyped_errors(&mut response.errors);
                response
            })
            .boxed()
    }
}

impl Executor for ServedSchema {
    async fn execute(&self, request: Request) -> Response {
        ServedSchema::execute(self, request).await
    }

    fn execute_stream(
        &self,
        request: Request,
        session_data: Option<Arc<Data>>,
    ) -> BoxStream<'static, Response> {
        ServedSchema::execute_stream(self, request, session_data)
    }
}

/// A value of type `T` in the request's data, else in the connection's.
fn find<'a, T: Any>(request: &'a Data, session: Option<&'a Data>) -> Option<&'a T> {
    let key = TypeId::of::<T>();
    request
        .get(&key)
        .or_else(|| session.and_then(|data| data.get(&key)))
        .and_then(|value| value.downcast_ref::<T>())
}
