//! Every error gets a code, on every transport ([`crate::executor::ServedSchema`] applies
//! [`tag_untyped_errors`] to every answer): errors raised by
//! async-graphql itself (parse errors, unknown fields, wrong variable types, depth and
//! complexity limits) carry none, and they are all the caller's input, so they become
//! VALIDATION (with a reason for the limits). Resolver errors already carry their own code.

use async_graphql::ServerError;

use crate::error::ErrorCode;

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
