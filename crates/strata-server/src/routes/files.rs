//! A bot's drive: raw file bodies streamed in and out, versions, listing.
//!
//! Bodies are never buffered here: a PUT hands the request body's stream to
//! the facade (bounded by `STRATA_MAX_UPLOAD_BYTES`, not the JSON body
//! limit), a GET streams the stored body back. The key is everything after
//! `/files/`, percent-decoded once and then validated by the drive
//! (`invalid_key` for `..`, absolute paths, NUL, backslashes, …).

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use strata::files::{ByteRange, ByteStream, ObjectMeta};
use strata::{BotScope, Error, Timestamp};
use utoipa::openapi::OpenApi;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{problem, ApiResult};
use crate::extract::{Json, Query, ReadScope, WriteScope};
use crate::AppState;

pub(crate) fn register(r: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    let mut r = r
        .routes(routes!(put_file, get_file, head_file, delete_file))
        .routes(routes!(list_files));
    document_wildcards(r.get_openapi_mut());
    r
}

/// axum needs `{*key}` to match a key with slashes; OpenAPI names the
/// parameter `{key}`.
fn document_wildcards(doc: &mut OpenApi) {
    let paths = std::mem::take(&mut doc.paths.paths);
    doc.paths.paths = paths
        .into_iter()
        .map(|(k, v)| (k.replace("{*", "{"), v))
        .collect();
}

/// The key of a `/v1/bots/{bot}/files/{key…}` path, percent-decoded once.
fn key_of(uri: &Uri) -> Result<String, Error> {
    let path = uri.path();
    let rest = path
        .splitn(6, '/')
        .nth(5)
        .ok_or_else(|| Error::invalid("the path has no file key").with_code("invalid_key"))?;
    let bytes = rest.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).map_err(|_| {
        Error::invalid("the file key is not valid UTF-8 once percent-decoded")
            .with_code("invalid_key")
    })
}

/// `Tue, 01 Dec 2026 14:26:46 GMT` (RFC 9110 IMF-fixdate).
fn http_date(t: Timestamp) -> String {
    let secs = t.as_millis().div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let weekday = (days + 4).rem_euclid(7); // 1970-01-01 was a Thursday
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} GMT",
        DAYS[weekday as usize],
        day,
        MONTHS[(month - 1) as usize],
        year,
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

fn header_value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s)
        .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"))
}

fn meta_headers(h: &mut HeaderMap, m: &ObjectMeta) {
    h.insert(header::CONTENT_TYPE, header_value(&m.content_type));
    h.insert(header::ETAG, header_value(&format!("\"{}\"", m.etag)));
    h.insert(
        header::LAST_MODIFIED,
        header_value(&http_date(m.updated_at)),
    );
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert("x-strata-version", HeaderValue::from(m.version));
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct FileQuery {
    /// Read this (possibly older) version instead of the current one.
    #[param(minimum = 1)]
    version: Option<i64>,
    /// Present (`?versions`): answer the list of the file's versions instead
    /// of its body.
    versions: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct VersionList {
    /// Newest first.
    versions: Vec<ObjectMeta>,
}

fn upload_stream(body: Body) -> ByteStream {
    Box::pin(body.into_data_stream().map(|r| {
        r.map_err(|e| {
            Error::invalid(format!("the upload was interrupted: {e}"))
                .with_code("upload_interrupted")
        })
    }))
}

/// Store a new version of a file from the raw request body (streamed;
/// `Content-Type` is kept). Uploading `<bot>.gbai/<bot>.gbot/config.csv`
/// (bot admin) also loads its `name,value` rows into the bot's settings.
#[utoipa::path(put, path = "/v1/bots/{bot}/files/{*key}", tag = "files",
    params(("bot" = String, Path, description = "Bot id", pattern = "^[a-z0-9][a-z0-9_-]{0,62}$"), ("key" = String, Path, description = "File key; may contain '/'. 1 to 1024 bytes of UTF-8: no leading '/', empty, '.' or '..' segments, backslashes or control characters", min_length = 1, max_length = 1024, pattern = "^(?:[^./\\\\\\x00-\\x1f\\x7f-\\x9f][^/\\\\\\x00-\\x1f\\x7f-\\x9f]*|\\.[^./\\\\\\x00-\\x1f\\x7f-\\x9f][^/\\\\\\x00-\\x1f\\x7f-\\x9f]*|\\.\\.[^/\\\\\\x00-\\x1f\\x7f-\\x9f]+)(?:/(?:[^./\\\\\\x00-\\x1f\\x7f-\\x9f][^/\\\\\\x00-\\x1f\\x7f-\\x9f]*|\\.[^./\\\\\\x00-\\x1f\\x7f-\\x9f][^/\\\\\\x00-\\x1f\\x7f-\\x9f]*|\\.\\.[^/\\\\\\x00-\\x1f\\x7f-\\x9f]+))*$")),
    request_body(content = Option<Vec<u8>>, content_type = "application/octet-stream",
        description = "The file's bytes, in any content type (kept as the file's `Content-Type`). \
An empty or absent body stores an empty file, as S3 does."),
    responses((status = 201, description = "Stored as a new version", body = ObjectMeta),
        (status = 400, description = "Invalid key, content type or config.csv"),
        (status = 413, description = "Over STRATA_MAX_UPLOAD_BYTES; nothing stored")))]
pub(crate) async fn put_file(
    WriteScope(scope): WriteScope,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let key = key_of(&uri)?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .map(|v| {
            v.to_str().map_err(|_| {
                Error::invalid("Content-Type is not ASCII").with_code("invalid_content_type")
            })
        })
        .transpose()?;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let meta = scope
        .put_file(&key, upload_stream(body), content_type, declared)
        .await?;
    let mut res = (StatusCode::CREATED, Json(&meta)).into_response();
    res.headers_mut()
        .insert(header::ETAG, header_value(&format!("\"{}\"", meta.etag)));
    res.headers_mut()
        .insert("x-strata-version", HeaderValue::from(meta.version));
    Ok(res)
}

fn range_of(headers: &HeaderMap) -> Option<ByteRange> {
    // A Range this server does not understand is ignored (RFC 9110 §14.2).
    headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| ByteRange::parse_header(v).ok())
}

async fn read_file(
    scope: &BotScope,
    uri: &Uri,
    q: &FileQuery,
    headers: &HeaderMap,
) -> ApiResult<Response> {
    let key = key_of(uri)?;
    if q.versions.is_some() {
        let versions = scope.file_versions(&key).await?;
        return Ok(Json(VersionList { versions }).into_response());
    }
    let range = range_of(headers);
    let got = scope.get_file(&key, q.version, range).await;
    let (meta, bytes, stream) = match got {
        Err(e) if e.code() == "range_not_satisfiable" => {
            let size = scope.head_file(&key, q.version).await?.size;
            let mut res = problem(StatusCode::RANGE_NOT_SATISFIABLE, e.code(), e.message());
            res.headers_mut().insert(
                header::CONTENT_RANGE,
                header_value(&format!("bytes */{size}")),
            );
            return Ok(res);
        }
        other => other?,
    };
    let mut res = Response::new(Body::from_stream(stream));
    meta_headers(res.headers_mut(), &meta);
    match bytes {
        Some(r) => {
            *res.status_mut() = StatusCode::PARTIAL_CONTENT;
            res.headers_mut().insert(
                header::CONTENT_RANGE,
                header_value(&format!("bytes {}-{}/{}", r.start, r.end - 1, meta.size)),
            );
            res.headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from(r.end - r.start));
        }
        None => {
            res.headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from(meta.size));
        }
    }
    Ok(res)
}

/// A file's body (streamed), honouring `Range: bytes=a-b | a- | -n` (206,
/// or 416 when the range is outside the file); `?version=N` reads an older
/// version; `?versions` lists the versions instead.
#[utoipa::path(get, path = "/v1/bots/{bot}/files/{*key}", tag = "files",
    params(("bot" = String, Path, description = "Bot id", pattern = "^[a-z0-9][a-z0-9_-]{0,62}$"), ("key" = String, Path, description = "File key; may contain '/'. 1 to 1024 bytes of UTF-8: no leading '/', empty, '.' or '..' segments, backslashes or control characters", min_length = 1, max_length = 1024, pattern = "^(?:[^./\\\\\\x00-\\x1f\\x7f-\\x9f][^/\\\\\\x00-\\x1f\\x7f-\\x9f]*|\\.[^./\\\\\\x00-\\x1f\\x7f-\\x9f][^/\\\\\\x00-\\x1f\\x7f-\\x9f]*|\\.\\.[^/\\\\\\x00-\\x1f\\x7f-\\x9f]+)(?:/(?:[^./\\\\\\x00-\\x1f\\x7f-\\x9f][^/\\\\\\x00-\\x1f\\x7f-\\x9f]*|\\.[^./\\\\\\x00-\\x1f\\x7f-\\x9f][^/\\\\\\x00-\\x1f\\x7f-\\x9f]*|\\.\\.[^/\\\\\\x00-\\x1f\\x7f-\\x9f]+))*$"), FileQuery),
    responses((status = 200, description = "The body, in the file's own Content-Type, with ETag, \
Last-Modified, X-Strata-Version; with `?versions`, the version list as JSON",
            content((VersionList = "application/json"), (Vec<u8> = "*/*"))),
        (status = 206, description = "The requested byte range, with Content-Range"),
        (status = 416, description = "The range is outside the file")))]
pub(crate) async fn get_file(
    ReadScope(scope): ReadScope,
    uri: Uri,
    Query(q): Query<FileQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    read_file(&scope, &uri, &q, &headers).await
}

/// A file's headers without its body.
#[utoipa::path(head, path = "/v1/bots/{bot}/files/{*key}", tag = "files",
    params(("bot" = String, Path, description = "Bot id", pattern = "^[a-z0-9][a-z0-9_-]{0,62}$"), ("key" = String, Path, description = "File key; may contain '/'. 1 to 1024 bytes of UTF-8: no leading '/', empty, '.' or '..' segments, backslashes or control characters", min_length = 1, max_length = 1024, pattern = "^(?:[^./\\\\\\x00-\\x1f\\x7f-\\x9f][^/\\\\\\x00-\\x1f\\x7f-\\x9f]*|\\.[^./\\\\\\x00-\\x1f\\x7f-\\x9f][^/\\\\\\x00-\\x1f\\x7f-\\x9f]*|\\.\\.[^/\\\\\\x00-\\x1f\\x7f-\\x9f]+)(?:/(?:[^./\\\\\\x00-\\x1f\\x7f-\\x9f][^/\\\\\\x00-\\x1f\\x7f-\\x9f]*|\\.[^./\\\\\\x00-\\x1f\\x7f-\\x9f][^/\\\\\\x00-\\x1f\\x7f-\\x9f]*|\\.\\.[^/\\\\\\x00-\\x1f\\x7f-\\x9f]+))*$"), FileQuery),
    responses((status = 200, description = "The file exists"), (status = 404, description = "No such file")))]
pub(crate) async fn head_file(
    ReadScope(scope): ReadScope,
    uri: Uri,
    Query(q): Query<FileQuery>,
) -> ApiResult<Response> {
    let key = key_of(&uri)?;
    let meta = scope.head_file(&key, q.version).await?;
    let mut res = StatusCode::OK.into_response();
    meta_headers(res.headers_mut(), &meta);
    res.headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(meta.size));
    Ok(res)
}

/// Delete a file's current version (older versions stay readable with
/// `?version=` until retention removes them).
#[utoipa::path(delete, path = "/v1/bots/{bot}/files/{*key}", tag = "files",
    params(("bot" = String, Path, description = "Bot id", pattern = "^[a-z0-9][a-z0-9_-]{0,62}$"), ("key" = String, Path, description = "File key; may contain '/'. 1 to 1024 bytes of UTF-8: no leading '/', empty, '.' or '..' segments, backslashes or control characters", min_length = 1, max_length = 1024, pattern = "^(?:[^./\\\\\\x00-\\x1f\\x7f-\\x9f][^/\\\\\\x00-\\x1f\\x7f-\\x9f]*|\\.[^./\\\\\\x00-\\x1f\\x7f-\\x9f][^/\\\\\\x00-\\x1f\\x7f-\\x9f]*|\\.\\.[^/\\\\\\x00-\\x1f\\x7f-\\x9f]+)(?:/(?:[^./\\\\\\x00-\\x1f\\x7f-\\x9f][^/\\\\\\x00-\\x1f\\x7f-\\x9f]*|\\.[^./\\\\\\x00-\\x1f\\x7f-\\x9f][^/\\\\\\x00-\\x1f\\x7f-\\x9f]*|\\.\\.[^/\\\\\\x00-\\x1f\\x7f-\\x9f]+))*$")),
    responses((status = 204, description = "Deleted")))]
pub(crate) async fn delete_file(WriteScope(scope): WriteScope, uri: Uri) -> ApiResult<StatusCode> {
    let key = key_of(&uri)?;
    scope.delete_file(&key).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListFilesQuery {
    /// Only keys starting with this.
    prefix: Option<String>,
    /// Roll keys with this after the prefix up into `prefixes` (e.g. `/`).
    delimiter: Option<String>,
    /// `next_cursor` of the previous page (opaque, format `cursor`).
    #[param(format = "cursor")]
    cursor: Option<String>,
    /// Entries (objects plus prefixes) per page, 1 to 1000 (default 1000).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct FileEntry {
    key: String,
    size: u64,
    /// Hex SHA-256 of the body.
    etag: String,
    content_type: String,
    version: i64,
    #[schema(value_type = String)]
    updated_at: Timestamp,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct FileList {
    /// Current files, in key order.
    objects: Vec<FileEntry>,
    /// Rolled-up prefixes (with a delimiter), in order.
    prefixes: Vec<String>,
    next_cursor: Option<String>,
}

/// List a bot's current files by prefix, optionally rolled up by a delimiter.
#[utoipa::path(get, path = "/v1/bots/{bot}/files", tag = "files",
    params(("bot" = String, Path, description = "Bot id", pattern = "^[a-z0-9][a-z0-9_-]{0,62}$"), ListFilesQuery),
    responses((status = 200, body = FileList)))]
pub(crate) async fn list_files(
    ReadScope(scope): ReadScope,
    Query(q): Query<ListFilesQuery>,
) -> ApiResult<Json<FileList>> {
    let page = scope
        .list_files(
            q.prefix.as_deref(),
            q.delimiter.as_deref(),
            q.cursor.as_deref(),
            q.limit,
        )
        .await?;
    Ok(Json(FileList {
        objects: page
            .objects
            .into_iter()
            .map(|m| FileEntry {
                key: m.key,
                size: m.size,
                etag: m.etag,
                content_type: m.content_type,
                version: m.version,
                updated_at: m.updated_at,
            })
            .collect(),
        prefixes: page.prefixes,
        next_cursor: page.next_cursor,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates() {
        assert_eq!(
            http_date(Timestamp::from_millis(0)),
            "Thu, 01 Jan 1970 00:00:00 GMT"
        );
        assert_eq!(
            http_date(Timestamp::from_millis(1_784_644_006_000)),
            "Tue, 21 Jul 2026 14:26:46 GMT"
        );
    }

    #[test]
    fn keys_are_percent_decoded_once() {
        let k = |p: &str| key_of(&p.parse::<Uri>().expect("uri"));
        assert_eq!(k("/v1/bots/b/files/a/b.txt").expect("ok"), "a/b.txt");
        assert_eq!(k("/v1/bots/b/files/%2e%2e/x").expect("ok"), "../x");
        assert_eq!(k("/v1/bots/b/files/a%20b%2525").expect("ok"), "a b%25");
        assert_eq!(k("/v1/bots/b/files/a%00b").expect("ok"), "a\0b");
        assert_eq!(k("/v1/bots/b/files/x%").expect("ok"), "x%");
        assert_eq!(
            k("/v1/bots/b/files/%ff").expect_err("utf8").code(),
            "invalid_key"
        );
    }
}
