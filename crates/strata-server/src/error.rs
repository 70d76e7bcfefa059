//! The one place where errors become HTTP responses.
//!
//! Every failure leaves the server as `application/problem+json` (RFC 9457)
//! with `type`, `title`, `status`, `detail` and Strata's stable `code`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use strata::{Error, ErrorKind};
use utoipa::ToSchema;

/// A problem+json body.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// `urn:strata:problem:<code>`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The HTTP status's reason phrase.
    pub title: String,
    pub status: u16,
    /// What went wrong, for a person.
    pub detail: String,
    /// Stable machine-readable code (`not_found`, `invalid_input`, …).
    pub code: String,
}

/// An error on its way out of a handler.
#[derive(Debug)]
pub struct ApiError(pub Error);

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError(e)
    }
}

/// Result of a handler.
pub type ApiResult<T> = Result<T, ApiError>;

/// The HTTP status of an error kind.
pub fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::AlreadyExists | ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::InvalidInput => StatusCode::BAD_REQUEST,
        ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorKind::Forbidden | ErrorKind::QuotaExceeded => StatusCode::FORBIDDEN,
        ErrorKind::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        ErrorKind::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// Builds a problem response from a status, code and detail.
pub fn problem(status: StatusCode, code: &str, detail: impl Into<String>) -> Response {
    let body = Problem {
        kind: format!("urn:strata:problem:{code}"),
        title: status.canonical_reason().unwrap_or("Error").to_owned(),
        status: status.as_u16(),
        detail: detail.into(),
        code: code.to_owned(),
    };
    let json = serde_json::to_vec(&body).unwrap_or_default();
    let mut res = (status, json).into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    if status == StatusCode::UNAUTHORIZED {
        res.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    res
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = status_of(self.0.kind());
        if status.is_server_error() {
            tracing::error!(error = %self.0, "request failed");
            let detail = if self.0.kind() == ErrorKind::Internal {
                "internal error; see the server log".to_owned()
            } else {
                self.0.message().to_owned()
            };
            return problem(status, self.0.code(), detail);
        }
        problem(status, self.0.code(), self.0.message())
    }
}
