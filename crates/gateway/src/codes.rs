//! A schema extension that gives every error a code, on every transport: errors raised by
//! async-graphql itself (parse errors, unknown fields, wrong variable types, depth and
//! complexity limits) carry none, and they are all the caller's input, so they become
//! VALIDATION (with a reason for the limits). Resolver errors already carry their own code.

use std::sync::Arc;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextRequest, NextSubscribe,
};
use async_graphql::{Response, ServerError};
use futures_util::stream::{BoxStream, StreamExt};

use crate::error::ErrorCode;

/// Installs [`tag_untyped_errors`] on requests and subscriptions.
pub struct ErrorCodes;

impl ExtensionFactory for ErrorCodes {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ErrorCodesExtension)
    }
}

struct ErrorCodesExtension;

#[async_graphql::async_trait::async_trait]
impl Extension for ErrorCodesExtension {
    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        let mut response = next.run(ctx).await;
        tag_untyped_errors(&mut response.errors);
        response
    }

    fn subscribe<'s>(
        &self,
        ctx: &ExtensionContext<'_>,
        stream: BoxStream<'s, Response>,
        next: NextSubscribe<'_>,
    ) -> BoxStream<'s, Response> {
        next.run(ctx, stream)
            .map(|mut response| {
                tag_untyped_errors(&mut response.errors);
                response
            })
            .boxed()
    }
}

/// Gives every error without a code VALIDATION, with a reason for the query limits.
pub fn tag_untyped_errors(errors: &mut [ServerError]) {
    for err in errors {
        let has_code = err
            .extensions
            .as_ref()
            .is_some_and(|x| x.get("code").is_some());
        if !has_code {
            let reason = if err.message.contains("too complex") {
                Some("QUERY_TOO_COMPLEX")
            } else if err.message.contains("nested too deep") {
                Some("QUERY_TOO_DEEP")
            } else {
                None
            };
            let ext = err.extensions.get_or_insert_with(Default::default);
            ext.set("code", ErrorCode::Validation.as_str());
            if let Some(reason) = reason {
                ext.set("reason", reason);
            }
        }
    }
}
