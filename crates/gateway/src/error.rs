//! The errors the API shows: one typed code per kind in GraphQL `extensions.code`, a stable
//! `extensions.reason` where the domain gave one, and never an internal detail.

use async_graphql::ErrorExtensions;

/// The codes a client can match on.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ErrorCode {
    Unauthenticated,
    Forbidden,
    NotFound,
    Validation,
    Conflict,
    RateLimited,
    /// The log's storage cannot be reached right now (e.g. PostgreSQL failing over): nothing
    /// was written; retry.
    Unavailable,
    Internal,
}

impl ErrorCode {
    /// The code as sent.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Unauthenticated => "UNAUTHENTICATED",
            ErrorCode::Forbidden => "FORBIDDEN",
            ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::Validation => "VALIDATION",
            ErrorCode::Conflict => "CONFLICT",
            ErrorCode::RateLimited => "RATE_LIMITED",
            ErrorCode::Unavailable => "UNAVAILABLE",
            ErrorCode::Internal => "INTERNAL",
        }
    }
}

/// An error on its way to a client.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("authentication required: send `Authorization: Bearer <token>`")]
    Unauthenticated,
    #[error("this token may not {0}")]
    Forbidden(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{message}")]
    Validation {
        message: String,
        reason: &'static str,
        field: Option<String>,
    },
    #[error("version conflict on {stream}: expected version {expected}, actual version {actual}")]
    Conflict {
        stream: String,
        /// The version the caller expected (0: no events yet).
        expected: u64,
        /// The stream's version (0: no events yet).
        actual: u64,
    },
    #[error("too many requests; retry after {retry_after_ms} ms")]
    RateLimited { retry_after_ms: u64 },
    /// A cap on concurrent subscriptions (per connection or per token) is reached.
    #[error("at most {limit} subscriptions may run at once per {per}; stop one first")]
    TooManySubscriptions { limit: usize, per: &'static str },
    /// The storage of the log could not be reached; the detail is logged, never sent.
    #[error("the event store is unavailable right now (request id {request_id}); retry")]
    Unavailable { request_id: String, detail: String },
    /// The detail is logged, never sent.
    #[error("internal error (request id {request_id})")]
    Internal { request_id: String, detail: String },
}

impl ApiError {
    /// The typed code.
    pub fn code(&self) -> ErrorCode {
        match self {
            ApiError::Unauthenticated => ErrorCode::Unauthenticated,
            ApiError::Forbidden(_) => ErrorCode::Forbidden,
            ApiError::NotFound(_) => ErrorCode::NotFound,
            ApiError::Validation { .. } => ErrorCode::Validation,
            ApiError::Conflict { .. } => ErrorCode::Conflict,
            ApiError::RateLimited { .. } | ApiError::TooManySubscriptions { .. } => {
                ErrorCode::RateLimited
            }
            ApiError::Unavailable { .. } => ErrorCode::Unavailable,
            ApiError::Internal { .. } => ErrorCode::Internal,
        }
    }

    /// A validation error with a stable reason and, when known, the offending field.
    pub fn validation(message: impl Into<String>, reason: &'static str) -> ApiError {
        ApiError::Validation {
            message: message.into(),
            reason,
            field: None,
        }
    }

    /// The store could not be reached: logs the detail with a fresh request-scoped id and
    /// hides it.
    pub fn unavailable(detail: impl std::fmt::Display) -> ApiError {
        let request_id = uuid::Uuid::now_v7().to_string();
        let detail = detail.to_string();
        tracing::warn!(%request_id, %detail, "the event store is unavailable");
        ApiError::Unavailable { request_id, detail }
    }

    /// An internal failure: logs the detail with a fresh request-scoped id and hides it.
    pub fn internal(detail: impl std::fmt::Display) -> ApiError {
        let request_id = uuid::Uuid::now_v7().to_string();
        let detail = detail.to_string();
        tracing::error!(%request_id, %detail, "internal error");
        ApiError::Internal { request_id, detail }
    }
}

impl ErrorExtensions for ApiError {
    fn extend(&self) -> async_graphql::Error {
        let code = self.code().as_str();
        async_graphql::Error::new(self.to_string()).extend_with(|_, ext| {
            ext.set("code", code);
            match self {
                ApiError::Validation { reason, field, .. } => {
                    ext.set("reason", *reason);
                    if let Some(field) = field {
                        ext.set("field", field.as_str());
                    }
                }
                ApiError::Conflict {
                    stream,
                    expected,
                    actual,
                } => {
                    ext.set("stream", stream.as_str());
                    ext.set("expected", *expected);
                    ext.set("actual", *actual);
                }
                ApiError::RateLimited { retry_after_ms } => {
                    ext.set("retryAfterMs", *retry_after_ms);
                }
                ApiError::TooManySubscriptions { limit, per } => {
                    ext.set("reason", "TOO_MANY_SUBSCRIPTIONS");
                    ext.set("limit", *limit);
                    ext.set("per", *per);
                }
                ApiError::Internal { request_id, .. }
                | ApiError::Unavailable { request_id, .. } => {
                    ext.set("requestId", request_id.as_str());
                }
                _ => {}
            }
        })
    }
}

/// Result type of the gateway's own functions.
pub type ApiResult<T> = Result<T, ApiError>;

/// Turns an [`ApiError`] into a GraphQL error *with* its extensions. (async-graphql converts any
/// `Display` error with `?`, which would drop the code; resolvers call `.gql()` instead.)
pub trait IntoGql<T> {
    fn gql(self) -> async_graphql::Result<T>;
}

impl<T> IntoGql<T> for ApiResult<T> {
    fn gql(self) -> async_graphql::Result<T> {
        self.map_err(|e| e.extend())
    }
}
