//! Test-only helpers shared by Strata's test suites (a dev-dependency, never
//! published).
//!
//! # Tests that need an outside backend
//!
//! Some tests run against a service the machine has to provide: Redis
//! (`STRATA_TEST_REDIS_URL`), an S3-compatible server
//! (`STRATA_TEST_S3_ENDPOINT`), the embedding model (`STRATA_TEST_MODEL_DIR`),
//! PostgreSQL (`STRATA_TEST_POSTGRES_URL`). `bash scripts/test.sh` sets all of
//! them up. The policy for a test that finds its variable unset is here and
//! nowhere else:
//!
//! - under CI (`CI` set to any non-empty value) or with
//!   `STRATA_REQUIRE_BACKENDS=1`, the test **fails**: CI cannot pass with a
//!   test skipped;
//! - run by hand without them, the test is skipped and says so with one line
//!   on stderr, `SKIPPED <test>: <VAR> is not set (bash scripts/test.sh sets it)`,
//!   written past the test harness's output capture so it is always seen.
//!
//! A variable that is set but names a backend that does not answer is the
//! test's own failure (it connects and panics), never a skip.
//!
//! ```
//! fn redis_url() -> Option<String> {
//!     strata_testkit::backend("STRATA_TEST_REDIS_URL", "my_crate::redis_works")
//! }
//! ```

use std::ffi::OsStr;
use std::io::Write;

/// The variable that makes every backend test mandatory outside CI too.
pub const REQUIRE_VAR: &str = "STRATA_REQUIRE_BACKENDS";

/// Whether a test that cannot reach its backend must fail rather than skip:
/// `CI` is set to a non-empty value, or `STRATA_REQUIRE_BACKENDS` is set to
/// anything but empty or `0`.
pub fn backends_required() -> bool {
    required_by(std::env::var_os("CI"), std::env::var_os(REQUIRE_VAR))
}

fn required_by(ci: Option<impl AsRef<OsStr>>, require: Option<impl AsRef<OsStr>>) -> bool {
    let ci = ci.is_some_and(|v| !v.as_ref().is_empty());
    let require = require.is_some_and(|v| {
        let v = v.as_ref();
        !v.is_empty() && v != "0"
    });
    ci || require
}

/// The value of the backend variable `var` for the test named `test`.
///
/// Returns `Some(value)` when the variable is set to something other than
/// blanks. Otherwise, when [`backends_required`], panics naming the test and
/// the variable; else prints one `SKIPPED` line on stderr and returns `None`,
/// and the caller returns without running.
///
/// # Panics
///
/// When the variable is unset or blank and backends are required.
#[track_caller]
pub fn backend(var: &str, test: &str) -> Option<String> {
    let value = std::env::var(var).ok();
    // Straight to the stderr handle: the test harness captures `eprintln!`
    // of passing tests, and a skip must be seen.
    decide(
        var,
        test,
        value,
        backends_required(),
        &mut std::io::stderr().lock(),
    )
}

/// Whether a facility the test needs beyond a backend variable is there:
/// `missing` is `None` when it is, else why not (`"redis-server is not
/// installed"`, `"mounting a tmpfs needs root"`). The same policy as
/// [`backend`]: under CI or `STRATA_REQUIRE_BACKENDS=1` a missing facility
/// fails the test, by hand it is skipped with one line on stderr.
///
/// # Panics
///
/// When the facility is missing and backends are required.
#[track_caller]
pub fn facility(test: &str, missing: Option<String>) -> bool {
    let Some(why) = missing else {
        return true;
    };
    if backends_required() {
        panic!("{test} cannot run: {why}, and CI or {REQUIRE_VAR}=1 requires every test to run");
    }
    let _ = writeln!(std::io::stderr().lock(), "SKIPPED {test}: {why}");
    false
}

#[track_caller]
fn decide(
    var: &str,
    test: &str,
    value: Option<String>,
    required: bool,
    out: &mut dyn Write,
) -> Option<String> {
    match value {
        Some(v) if !v.trim().is_empty() => Some(v),
        _ if required => panic!(
            "{test} cannot run: {var} is not set, and CI or {REQUIRE_VAR}=1 requires every \
             backend test to run (bash scripts/test.sh sets it)"
        ),
        _ => {
            let _ = writeln!(
                out,
                "SKIPPED {test}: {var} is not set (bash scripts/test.sh sets it)"
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ci_or_the_require_variable_make_backends_required() {
        let none: Option<&str> = None;
        assert!(!required_by(none, none));
        assert!(!required_by(Some(""), Some("")));
        assert!(!required_by(none, Some("0")));
        assert!(required_by(Some("true"), none));
        assert!(required_by(Some("1"), none));
        assert!(required_by(none, Some("1")));
    }

    #[test]
    fn a_set_variable_is_returned_silently() {
        for required in [true, false] {
            let mut out = Vec::new();
            assert_eq!(
                decide("V", "t", Some("redis://x".into()), required, &mut out).as_deref(),
                Some("redis://x")
            );
            assert!(out.is_empty());
        }
    }

    #[test]
    fn unset_or_blank_is_skipped_by_hand_with_one_line() {
        for value in [None, Some("  ".to_owned())] {
            let mut out = Vec::new();
            assert_eq!(decide("V", "a::t", value, false, &mut out), None);
            assert_eq!(
                String::from_utf8(out).expect("utf-8"),
                "SKIPPED a::t: V is not set (bash scripts/test.sh sets it)\n"
            );
        }
    }

    #[test]
    #[should_panic(expected = "t cannot run: V is not set")]
    fn unset_fails_when_required() {
        decide("V", "t", None, true, &mut Vec::new());
    }

    #[test]
    #[should_panic(expected = "t cannot run: V is not set")]
    fn blank_fails_when_required() {
        decide("V", "t", Some(String::new()), true, &mut Vec::new());
    }
}
