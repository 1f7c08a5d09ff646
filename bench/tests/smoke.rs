//! Runs every scenario, tiny, against a Parlor server started in this
//! process, through the built binary: zero losses and a JSON last line.

use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// An `[[oper]]` block: name `oper`, password `password`.
const OPER: &str = "[[oper]]\nname = \"oper\"\npassword_hash = \"$argon2id$v=19$m=19456,t=2,p=1$\
                    n4eHqGrW919MBYj1WHAWrA$UdXnbhUtNg65M+NsaIbx/Ts16sPI5wCsaLnW01Y6pMw\"\n";

async fn start_server() -> (parlor::ServerHandle, tempfile::TempDir) {
    start_server_with("").await
}

async fn start_server_with(extra: &str) -> (parlor::ServerHandle, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temporary data directory");
    // Every bench client comes from 127.0.0.1 and floods on purpose.
    let toml = format!(
        "[server]\nname = \"irc.test\"\nlisten = [\"127.0.0.1:0\"]\ndata_dir = {:?}\n\
         [http]\nlisten = []\n\
         [limits]\nmax_clients_per_ip = 0\nflood_lines_per_sec = 0\n{extra}",
        dir.path().display().to_string()
    );
    let config = parlor::Config::from_toml_str(&toml, "smoke").expect("valid config");
    let handle = parlor::spawn(config).await.expect("server starts");
    (handle, dir)
}

/// Runs the bench binary off the runtime, so the in-process server keeps
/// serving while it waits.
async fn bench(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_parlor-bench"))
            .args(&args)
            .output()
            .expect("the bench binary runs")
    })
    .await
    .expect("the bench finished")
}

/// Runs a scenario that must succeed and returns its JSON line.
async fn run(scenario: &str, addr: &str, extra: &[&str]) -> Value {
    let mut args: Vec<String> = vec![scenario.into(), "--addr".into(), addr.into()];
    args.extend(["--server-pid".into(), std::process::id().to_string()]);
    args.extend(["--timeout-secs".into(), "30".into()]);
    args.extend(extra.iter().map(|s| s.to_string()));
    let out = bench(args).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{scenario} failed:\n{stdout}\n{stderr}"
    );
    let last = stdout.lines().last().expect("some output");
    let json: Value = serde_json::from_str(last).expect("the last line is JSON");
    assert_eq!(json["scenario"], scenario, "{stdout}");
    assert_eq!(json["errors"], serde_json::json!([]), "{stdout}");
    assert!(json["server_cpu_us"].is_u64(), "{stdout}");
    assert!(json["rss_kib_before"].is_u64(), "{stdout}");
    json
}

fn check_deliveries(json: &Value, expected: u64) {
    assert_eq!(json["expected_deliveries"], expected, "{json}");
    assert_eq!(json["deliveries"], expected, "{json}");
    assert_eq!(json["losses"], 0, "{json}");
}

/// fanout and dm read the CPU at the last delivery, and again after the
/// closing PING round, which can only have added to it.
fn check_settle_reported(json: &Value) {
    let (Some(at_last), Some(with_settle)) = (
        json["cpu_us_per_delivery"].as_f64(),
        json["cpu_us_per_delivery_with_settle"].as_f64(),
    ) else {
        panic!("both CPU figures are numbers: {json}");
    };
    assert!(with_settle >= at_last, "{json}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scenario_runs_without_loss() {
    let (server, _dir) = start_server().await;
    let addr = server.local_addr().to_string();

    let flood = [
        "--clients",
        "5",
        "--senders",
        "2",
        "--messages",
        "20",
        "--label",
        "smoke",
    ];
    let json = run("fanout", &addr, &flood).await;
    check_deliveries(&json, 2 * 20 * 4);
    check_settle_reported(&json);
    assert_eq!(json["label"], "smoke");
    assert_eq!(json["duplicates"], 0);
    assert_eq!(json["reordered"], 0);
    assert!(json["latency_us"]["p50"].is_u64(), "{json}");

    let paced = [
        "--clients",
        "3",
        "--senders",
        "2",
        "--messages",
        "10",
        "--rate",
        "1000",
    ];
    let json = run("fanout", &addr, &paced).await;
    check_deliveries(&json, 2 * 10 * 2);
    assert_eq!(json["params"]["mode"], "paced");

    let json = run("dm", &addr, &["--pairs", "3", "--messages", "10"]).await;
    check_deliveries(&json, 6 * 10);
    check_settle_reported(&json);

    let json = run("connect", &addr, &["--clients", "20", "--hold-secs", "0.2"]).await;
    assert_eq!(json["registrations"], 20, "{json}");
    assert!(json["rss_kib_per_client"].is_number(), "{json}");
    assert!(json["deliveries"].is_null(), "{json}");
    assert!(json["cpu_us_per_delivery_with_settle"].is_null(), "{json}");

    let json = run("join-storm", &addr, &["--clients", "10"]).await;
    check_deliveries(&json, 10 * 11 / 2);

    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_run_beside_a_conversation_and_the_lock_is_read() {
    parlor::server::lock_timing::enable();
    let (server, _dir) = start_server_with(OPER).await;
    let addr = server.local_addr().to_string();
    let args = [
        "--clients",
        "8",
        "--talkers",
        "3",
        "--rate",
        "30",
        "--channels",
        "2",
        "--renames",
        "2",
        "--phase-secs",
        "0.5",
        "--rounds",
        "1",
        "--oper",
        "oper",
        "--oper-password",
        "password",
    ];
    let json = run("query-stall", &addr, &args).await;
    // 3 talkers, 5 messages each per phase, two phases.
    check_deliveries(&json, 2 * 3 * 2 * 5);
    let extra = &json["extra"];
    for phase in ["quiet", "querying"] {
        assert_eq!(extra[phase]["phases"], 1, "{json}");
        assert!(extra[phase]["latency_us"]["p99"].is_u64(), "{json}");
        let lock = &extra[phase]["lock"]["exclusive"];
        assert!(lock["holds"].as_u64().unwrap() > 0, "{json}");
        assert!(lock["max_ns"].as_u64().unwrap() > 0, "{json}");
        assert!(lock["p99_ns"].is_u64(), "{json}");
        assert!(lock["max_cpu_ns"].is_u64(), "{json}");
    }
    assert!(extra["p99_ratio"].is_number(), "{json}");
    let queries = extra["queries"].as_array().unwrap();
    let names: Vec<&str> = queries
        .iter()
        .map(|q| q["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["who_all", "who_mask", "list", "whowas"]);
    // WHO * lists the 8 clients, the querier and the operator, then 315.
    assert_eq!(queries[0]["lines"], 11, "{json}");
    assert!(queries[0]["replies"].as_u64().unwrap() > 0, "{json}");
    // LIST: 321, the talkers' channel and the 2 others, 323.
    assert_eq!(queries[2]["lines"], 5, "{json}");
    // WHOWAS: 314, 312, 369.
    assert_eq!(queries[3]["lines"], 3, "{json}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_burst_without_failures() {
    let (server, _dir) = start_server().await;
    let addr = server.local_addr().to_string();
    let json = run("login", &addr, &["--accounts", "5", "--rounds", "1"]).await;
    check_deliveries(&json, 5);
    assert_eq!(json["params"]["rounds_run"], 1, "{json}");
    assert!(json["latency_us"]["p99"].is_u64(), "{json}");
    assert!(json["cpu_us_per_delivery"].is_number(), "{json}");
    assert!(json["probe_rtt_ms"]["p50"].is_number(), "{json}");
    assert!(json["probe_rtt_ms"]["max"].is_number(), "{json}");

    // Two rounds: every client logs out in between and logs in again.
    let json = run(
        "login",
        &addr,
        &["--accounts", "3", "--rounds", "2", "--account-prefix", "lh"],
    )
    .await;
    check_deliveries(&json, 6);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_nick_is_retried() {
    let (server, _dir) = start_server().await;
    let addr = server.local_addr().to_string();
    // Someone else holds the nick the bench's first client wants.
    let stream = TcpStream::connect(&addr).await.unwrap();
    let (rd, mut wr) = stream.into_split();
    wr.write_all(b"NICK pb0\r\nUSER x 0 * :x\r\n")
        .await
        .unwrap();
    let mut lines = BufReader::new(rd).lines();
    tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.contains(" 001 ") {
                break;
            }
        }
    })
    .await
    .expect("registered in time");

    let json = run("dm", &addr, &["--pairs", "1", "--messages", "5"]).await;
    check_deliveries(&json, 10);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_server_fails_with_a_message() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let out = bench(vec![
        "connect".into(),
        "--addr".into(),
        addr,
        "--clients".into(),
        "3".into(),
    ])
    .await;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot connect"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_past_its_timeout_fails() {
    // A listener that accepts but never speaks: registration cannot end.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    let args = [
        "fanout",
        "--addr",
        &addr,
        "--clients",
        "2",
        "--senders",
        "1",
        "--timeout-secs",
        "1",
    ];
    let out = bench(args.iter().map(|s| s.to_string()).collect()).await;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("timed out"), "{stderr}");
    hold.abort();
}

/// `--tls`: the same scenarios over the server's TLS listener.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_and_connect_run_over_tls() {
    let files = tempfile::tempdir().expect("directory for the certificate");
    let made = parlor::tls::mkcert::self_signed(&["localhost".to_owned()]).expect("certificate");
    let (cert, key) = (files.path().join("cert.pem"), files.path().join("key.pem"));
    std::fs::write(&cert, made.cert_pem).unwrap();
    std::fs::write(&key, made.key_pem).unwrap();
    let (server, _dir) = start_server_with(&format!(
        "[tls]\nlisten = [\"127.0.0.1:0\"]\ncert_file = {:?}\nkey_file = {:?}\n",
        cert.display().to_string(),
        key.display().to_string()
    ))
    .await;
    let addr = server.tls_addrs()[0].to_string();
    let flood = [
        "--clients",
        "5",
        "--senders",
        "2",
        "--messages",
        "20",
        "--tls",
    ];
    let json = run("fanout", &addr, &flood).await;
    check_deliveries(&json, 2 * 20 * 4);
    let json = run(
        "connect",
        &addr,
        &["--clients", "20", "--hold-secs", "0", "--tls"],
    )
    .await;
    assert_eq!(json["registrations"], 20, "{json}");
    // Without --tls the TLS port answers nothing a plain client can read.
    let out = bench(vec![
        "connect".into(),
        "--addr".into(),
        addr,
        "--clients".into(),
        "1".into(),
        "--timeout-secs".into(),
        "5".into(),
    ])
    .await;
    assert!(
        !out.status.success(),
        "a plain client registered on the TLS port"
    );
}
