//! The `strata` command as a user drives it: init, serve, bot and key
//! management, the data-folder lock, and configuration errors.

mod common;

use common::{free_port, Server, ADMIN_KEY};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

fn strata(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_strata"));
    cmd.args(args)
        .env_remove("STRATA_ADMIN_KEY")
        .env_remove("STRATA_API_KEY")
        .env_remove("STRATA_URL")
        .env_remove("STRATA_CONFIG")
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run strata")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn help_reads_well() {
    let o = strata(&["--help"], &[]);
    assert!(o.status.success());
    let t = text(&o);
    for word in ["serve", "init", "bot", "key", "collection"] {
        assert!(t.contains(word), "--help lacks {word}: {t}");
    }
    for sub in [
        &["serve", "--help"][..],
        &["bot", "create", "--help"],
        &["key", "create", "--help"],
        &["collection", "export", "--help"],
        &["collection", "import", "--help"],
    ] {
        let o = strata(sub, &[]);
        assert!(o.status.success(), "{sub:?}");
        assert!(text(&o).contains("Usage"), "{sub:?}");
    }
}

#[test]
fn init_prints_an_admin_key_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let data_s = data.to_string_lossy().into_owned();
    let o = strata(&["init", "--data-dir", &data_s], &[]);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let key = out
        .split_whitespace()
        .find(|w| w.starts_with("sa_"))
        .unwrap_or_else(|| panic!("no admin key printed: {out}"))
        .to_owned();
    assert!(data.join("strata.db").exists());
    let again = strata(&["init", "--data-dir", &data_s], &[]);
    assert!(again.status.success());
    assert!(
        !text(&again).contains(&key),
        "the key must be shown only once"
    );
    assert!(text(&again).contains("already initialised"));
    // The printed key is the server's admin key.
    let port = free_port().to_string();
    let listen = format!("127.0.0.1:{port}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(["serve", "--data-dir", &data_s, "--listen", &listen])
        .env_remove("STRATA_ADMIN_KEY")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("serve");
    let url = format!("http://{listen}");
    let mut ok = false;
    for _ in 0..200 {
        std::thread::sleep(Duration::from_millis(50));
        let o = strata(&["bot", "list", "--url", &url, "--key", &key], &[]);
        if o.status.success() {
            ok = true;
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(ok, "the key printed by init must work as the admin key");
}

#[tokio::test(flavor = "multi_thread")]
async fn bot_and_key_commands_against_a_running_server() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path()).await;
    let env = [
        ("STRATA_URL", server.url.as_str()),
        ("STRATA_ADMIN_KEY", ADMIN_KEY),
    ];
    let run = |args: &[&str]| strata(args, &env);

    let o = run(&["bot", "create", "helpdesk", "--name", "Help desk"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = run(&["bot", "list"]);
    assert!(
        text(&o).contains("helpdesk") && text(&o).contains("Help desk"),
        "{}",
        text(&o)
    );

    let o = run(&[
        "key", "create", "helpdesk", "--name", "app", "--role", "reader",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let key = text(&o)
        .split_whitespace()
        .find(|w| w.starts_with("sk_"))
        .expect("key printed")
        .to_owned();
    let r = server
        .req(reqwest::Method::GET, "/v1/bots/helpdesk", Some(&key))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 200);

    let o = run(&["key", "list", "helpdesk", "--json"]);
    let listed: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    let id = listed["keys"][0]["id"].as_str().expect("key id").to_owned();
    assert!(
        !String::from_utf8_lossy(&o.stdout).contains(&key),
        "list must not show secrets"
    );

    let o = run(&["key", "revoke", "helpdesk", &id]);
    assert!(o.status.success(), "{}", text(&o));
    let r = server
        .req(reqwest::Method::GET, "/v1/bots/helpdesk", Some(&key))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 401, "a revoked key stops working at once");

    let o = run(&[
        "key", "create", "helpdesk", "--name", "x", "--role", "owner",
    ]);
    assert!(!o.status.success());
    assert!(text(&o).contains("invalid_role"), "{}", text(&o));

    let o = run(&["bot", "delete", "helpdesk"]);
    assert!(!o.status.success(), "delete needs --yes");
    let o = run(&["bot", "delete", "helpdesk", "--yes"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = run(&["bot", "list"]);
    assert!(!text(&o).contains("helpdesk"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_server_on_the_same_folder_stops_with_a_clear_message() {
    let dir = tempfile::tempdir().expect("tempdir");
    let _server = Server::start(dir.path()).await;
    let port = free_port().to_string();
    let o = strata(
        &["serve"],
        &[
            ("STRATA_DATA_DIR", &dir.path().to_string_lossy()),
            ("STRATA_LISTEN", &format!("127.0.0.1:{port}")),
            ("STRATA_ADMIN_KEY", ADMIN_KEY),
        ],
    );
    assert!(!o.status.success());
    assert!(
        text(&o).contains("in use by another strata process"),
        "{}",
        text(&o)
    );
}

#[test]
fn invalid_settings_stop_start_up_naming_the_setting() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().to_string_lossy().into_owned();
    for (k, v) in [
        ("STRATA_LISTEN", "not-an-address"),
        ("STRATA_RECORDS_URL", "mysql://db"),
        ("STRATA_MAX_BODY_BYTES", "lots"),
        ("STRATA_ADMIN_KEY", "short"),
        ("STRATA_DURABILITY", "maybe"),
        ("STRATA_VECTORS_URL", "qdrant://localhost:6334"),
        ("STRATA_VECTOR_MAX_POINTS", "-1"),
    ] {
        let o = strata(&["serve"], &[("STRATA_DATA_DIR", &d), (k, v)]);
        assert!(!o.status.success(), "{k}={v} must stop start-up");
        assert!(text(&o).contains(k), "{k}: {}", text(&o));
    }
    let cfg = dir.path().join("strata.toml");
    std::fs::write(&cfg, "listen = 5\n").expect("write");
    let o = strata(
        &["serve", "--config", &cfg.to_string_lossy()],
        &[("STRATA_DATA_DIR", &d)],
    );
    assert!(!o.status.success());
    assert!(text(&o).contains("listen"), "{}", text(&o));
}
