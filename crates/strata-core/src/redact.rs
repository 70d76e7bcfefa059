//! The one way Strata prints a URL that may carry a credential.
//!
//! Every place that shows a configured URL — the configuration logged at
//! start, error messages, readiness details, metric labels — goes through
//! [`redact_url`]. It parses the URL the way WHATWG URL parsers do (the
//! `url` crate: the user info ends at the *last* `@` of the authority, so a
//! password containing an unescaped `@` is still recognised as the
//! password), replaces the password with `***` and blanks the values of
//! query parameters whose names say they hold a secret (`password`,
//! `sslpassword`, `secret_access_key`, `token`, `api_key`, …). A string that
//! does not parse as a URL is redacted conservatively: everything between
//! `://` and the last `@` before the path is hidden.

/// Query parameter names (lower case, substrings) whose values are secrets.
const SECRET_PARAMS: &[&str] = &["pass", "secret", "token", "key", "credential", "auth"];

/// The mask put where a secret was.
pub const MASK: &str = "***";

/// `url` with its password (and secret query parameters) replaced by `***`.
/// The user name, host, port, path and other parameters stay readable.
///
/// ```
/// use strata_core::redact::redact_url;
/// assert_eq!(redact_url("redis://:hunter2@127.0.0.1:6379/15"), "redis://:***@127.0.0.1:6379/15");
/// assert_eq!(redact_url("postgres://app:p@ss@db:5432/strata"), "postgres://app:***@db:5432/strata");
/// assert_eq!(redact_url("sqlite://./data/strata.db"), "sqlite://./data/strata.db");
/// ```
pub fn redact_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        // `openai:http://user:pw@host/…`: a prefix before an inner URL.
        Ok(parsed) if parsed.cannot_be_a_base() && parsed.path().contains("://") => {
            let prefix_len = parsed.scheme().len() + 1;
            format!("{}{}", &raw[..prefix_len], redact_url(&raw[prefix_len..]))
        }
        // A `@` after the host that the parser did not take as the end of
        // the user info (`redis://u:1234/x@host`: an unescaped `/` in a
        // password): hide everything up to it.
        Ok(parsed)
            if parsed.username().is_empty()
                && parsed.password().is_none()
                && parsed.host_str().is_some_and(|h| !h.is_empty())
                && raw
                    .split_once("://")
                    .is_some_and(|(_, rest)| rest.contains('@')) =>
        {
            redact_unparsed(raw)
        }
        Ok(mut parsed) if parsed.has_authority() || parsed.query().is_some() => {
            let mut changed = false;
            if parsed.password().is_some() {
                changed |= parsed.set_password(Some(MASK)).is_ok();
            }
            if parsed.query().is_some() {
                let pairs: Vec<(String, String)> = parsed
                    .query_pairs()
                    .map(|(k, v)| {
                        let secret = is_secret_param(&k);
                        changed |= secret;
                        (
                            k.into_owned(),
                            if secret {
                                MASK.to_owned()
                            } else {
                                v.into_owned()
                            },
                        )
                    })
                    .collect();
                if pairs.iter().any(|(k, _)| is_secret_param(k)) {
                    parsed.query_pairs_mut().clear().extend_pairs(pairs);
                }
            }
            if changed {
                // `url` percent-encodes the mask's `*` in neither place.
                parsed.to_string()
            } else {
                raw.to_owned()
            }
        }
        _ => redact_unparsed(raw),
    }
}

fn is_secret_param(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    SECRET_PARAMS.iter().any(|s| n.contains(s))
}

/// Hides everything between `://` and the last `@` of the authority of a
/// string that is not a valid URL (it may still hold a credential).
fn redact_unparsed(raw: &str) -> String {
    let Some(scheme_end) = raw.find("://") else {
        return if raw.contains('@') {
            // `user:pw@host` without a scheme.
            match raw.rfind('@') {
                Some(at) => format!("{MASK}{}", &raw[at..]),
                None => raw.to_owned(),
            }
        } else {
            raw.to_owned()
        };
    };
    let start = scheme_end + 3;
    let rest = &raw[start..];
    // The authority ends at the first `/`, `?` or `#` after the last `@`
    // (a password may itself contain `/` or `?`).
    let Some(at) = rest.rfind('@') else {
        return raw.to_owned();
    };
    format!("{}{MASK}{}", &raw[..start], &rest[at..])
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_are_masked() {
        for (raw, want) in [
            (
                "redis://:hunter2@127.0.0.1:6379/15",
                "redis://:***@127.0.0.1:6379/15",
            ),
            ("redis://user:hunter2@host/0", "redis://user:***@host/0"),
            (
                "rediss://default:s3cr3t@cache.example.com:6380",
                "rediss://default:***@cache.example.com:6380",
            ),
            (
                "postgres://app:p@ss@db:5432/strata",
                "postgres://app:***@db:5432/strata",
            ),
            (
                "postgres://app:p%40ss@db/strata?sslmode=require",
                "postgres://app:***@db/strata?sslmode=require",
            ),
            // An unescaped `/` in the password: not a valid URL, the whole
            // user info goes.
            (
                "s3://AKIA:wJal/rXUt@bucket/prefix",
                "s3://***@bucket/prefix",
            ),
            // ... or a valid one whose "port" and path hold the password.
            ("redis://u:1234/x@host/0", "redis://***@host/0"),
            (
                "openai:http://u:pw@127.0.0.1:9/v1",
                "openai:http://u:***@127.0.0.1:9/v1",
            ),
        ] {
            assert_eq!(redact_url(raw), want, "{raw}");
        }
    }

    #[test]
    fn secret_query_parameters_are_masked() {
        let r = redact_url("postgres://db/strata?user=app&password=hunter2&sslmode=verify-full");
        assert!(!r.contains("hunter2"), "{r}");
        assert!(
            r.contains("sslmode=verify-full") && r.contains("user=app"),
            "{r}"
        );
        let r = redact_url("s3://bucket?secret_access_key=abc123&region=eu");
        assert!(!r.contains("abc123") && r.contains("region=eu"), "{r}");
    }

    #[test]
    fn urls_without_secrets_are_unchanged() {
        for raw in [
            "sqlite://./data/strata.db",
            "file:///var/lib/strata/drive",
            "memory://",
            "embedded",
            "redis://127.0.0.1:6379/15",
            "postgres://postgres@127.0.0.1:5432/test",
            "none",
            "local:/models/minilm",
        ] {
            assert_eq!(redact_url(raw), raw);
        }
    }

    #[test]
    fn unparsable_strings_hide_the_user_info() {
        // Not a valid URL (bad port), but a password is in it.
        let r = redact_url("redis://:hunter2@host:99999999/0");
        assert!(!r.contains("hunter2"), "{r}");
        let r = redact_url("user:hunter2@host");
        assert!(!r.contains("hunter2"), "{r}");
        let r = redact_url("weird://a:b@c@d:port/x");
        assert!(!r.contains("a:b") && !r.contains("b@c"), "{r}");
    }
}
