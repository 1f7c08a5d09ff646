//! The command line: check-config, mkpasswd, and running the real binary
//! with --listen, --http-listen and --data-dir overrides.

mod common;

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const BIN: &str = env!("CARGO_BIN_EXE_parlor");

fn run(args: &[&str], stdin: &str) -> (i32, String, String) {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run parlor");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn write_config(dir: &tempfile::TempDir, text: &str) -> String {
    let path = dir.path().join("parlor.toml");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn check_config_accepts_a_partial_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        &dir,
        "[server]\nname = \"irc.example.org\"\n[limits]\nnick_length = 20\n",
    );
    let (code, stdout, _) = run(&["check-config", &path], "");
    assert_eq!(code, 0);
    assert_eq!(stdout, format!("{path}: OK\n"));
}

#[test]
fn check_config_names_the_bad_key_and_what_is_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "[limits]\nnick_lenght = 20\n",
            "limits",
            "unknown field `nick_lenght`",
        ),
        (
            "[server]\ncasemapping = \"utf8\"\n",
            "server.casemapping",
            "`rfc1459`",
        ),
        (
            "[server]\nlisten = [\"localhost\"]\n",
            "server.listen",
            "IP:PORT",
        ),
        (
            "[limits]\nnick_length = 3\n",
            "limits.nick_length",
            "allowed 9 to 64",
        ),
        (
            "[limits]\nwhowas_entries = 50000\n",
            "limits.whowas_entries",
            "allowed 0 to 20000",
        ),
        (
            "[limits]\nsend_buffer_bytes = 100\n",
            "limits.send_buffer_bytes",
            "or 2048 to 16777216",
        ),
        (
            "[channels]\nrestart_wait_secs = 9999999\n",
            "channels.restart_wait_secs",
            "30 days",
        ),
        (
            "[limits]\nsendq_bytes = \"big\"\n",
            "limits.sendq_bytes",
            "invalid type",
        ),
        (
            "[[oper]]\nname = \"x\"\npassword_hash = \"plain\"\n",
            "oper.password_hash",
            "mkpasswd",
        ),
        ("[server\n", "", "TOML parse error"),
    ];
    for (text, key, allowed) in cases {
        let path = write_config(&dir, text);
        let (code, _, stderr) = run(&["check-config", &path], "");
        assert_eq!(code, 1, "{text:?} should be refused");
        assert!(
            stderr.contains(&path),
            "{text:?}: message names the file: {stderr}"
        );
        assert!(
            stderr.contains(key),
            "{text:?}: message names `{key}`: {stderr}"
        );
        assert!(
            stderr.contains(allowed),
            "{text:?}: message says `{allowed}`: {stderr}"
        );
    }
    let (code, _, stderr) = run(&["check-config", "/nonexistent/parlor.toml"], "");
    assert_eq!(code, 1);
    assert!(
        stderr.contains("cannot read /nonexistent/parlor.toml"),
        "{stderr}"
    );
}

#[test]
fn mkpasswd_prints_an_argon2id_hash_that_the_config_accepts() {
    let (code, stdout, _) = run(&["mkpasswd"], "correct horse\n");
    assert_eq!(code, 0);
    let hash = stdout.trim();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        &dir,
        &format!("[[oper]]\nname = \"root\"\npassword_hash = \"{hash}\"\n"),
    );
    assert_eq!(run(&["check-config", &path], "").0, 0);
    // A fresh salt each time.
    let (_, again, _) = run(&["mkpasswd"], "correct horse\n");
    assert_ne!(again.trim(), hash);
    assert_eq!(
        run(&["mkpasswd"], "\n").0,
        1,
        "an empty password is refused"
    );
}

/// Kills the server if a test fails before stopping it.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn listen_and_data_dir_override_the_file_and_the_data_dir_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("nested").join("data");
    let config = write_config(
        &dir,
        "[server]\nname = \"irc.test\"\nlisten = [\"127.0.0.1:1\"]\n",
    );
    let (first, second) = (free_port(), free_port());
    let child = Command::new(BIN)
        .args(["--config", &config])
        .args(["--listen", &format!("127.0.0.1:{first}")])
        .args(["--listen", &format!("127.0.0.1:{second}")])
        .args(["--http-listen", "127.0.0.1:0"])
        .args(["--data-dir", &data_dir.display().to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut running = Running(child);
    for port in [first, second] {
        let mut client = connect_with_retry(format!("127.0.0.1:{port}").parse().unwrap()).await;
        client.register(&format!("user{port}")).await;
    }
    assert!(data_dir.is_dir(), "the data directory is created on start");
    stop_cleanly(&mut running).await;
}

/// Sends SIGTERM and waits (bounded) for a clean exit.
async fn stop_cleanly(running: &mut Running) {
    let status = Command::new("kill")
        .args(["-TERM", &running.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + WAIT;
    let exit = loop {
        if let Some(exit) = running.0.try_wait().unwrap() {
            break exit;
        }
        assert!(Instant::now() < deadline, "server did not stop on SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(exit.success(), "{exit:?}");
}

#[tokio::test]
async fn the_server_runs_the_command_threads_its_config_asks_for() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = write_config(
        &dir,
        &format!("[server]\nname = \"irc.test\"\nlisten = [\"127.0.0.1:{port}\"]\nthreads = 3\n"),
    );
    let log_path = dir.path().join("server.log");
    let child = Command::new(BIN)
        .args(["--config", &config])
        .args(["--http-listen", "none"])
        .args(["--data-dir", &dir.path().join("data").display().to_string()])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let mut running = Running(child);
    let mut client = connect_with_retry(format!("127.0.0.1:{port}").parse().unwrap()).await;
    client.register("threads").await;
    stop_cleanly(&mut running).await;
    let log = std::fs::read_to_string(&log_path).unwrap();
    let started = log
        .lines()
        .find(|line| line.contains("command threads started"))
        .unwrap_or_else(|| panic!("no start line in the log:\n{log}"));
    assert!(started.contains(" threads=3 "), "{started}");
}

/// The HTTP door's addresses come from the command line as IRC's do,
/// replacing the file's; each request leaves an access log line.
#[tokio::test]
async fn http_listen_overrides_the_file_and_requests_are_logged() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        &dir,
        "[server]\nname = \"irc.test\"\n[http]\nlisten = [\"127.0.0.1:1\"]\n",
    );
    let (irc, first, second) = (free_port(), free_port(), free_port());
    let log_path = dir.path().join("server.log");
    let child = Command::new(BIN)
        .args(["--config", &config])
        .args(["--listen", &format!("127.0.0.1:{irc}")])
        .args(["--http-listen", &format!("127.0.0.1:{first}")])
        .args(["--http-listen", &format!("127.0.0.1:{second}")])
        .args(["--data-dir", &dir.path().join("data").display().to_string()])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let mut running = Running(child);
    // Once IRC listens, so does HTTP: both are bound before either serves.
    connect_with_retry(format!("127.0.0.1:{irc}").parse().unwrap()).await;
    for port in [first, second] {
        let answer = http::get(format!("127.0.0.1:{port}").parse().unwrap(), "/healthz").await;
        assert_eq!(answer.status, 200, "{answer:?}");
    }
    stop_cleanly(&mut running).await;
    let log = std::fs::read_to_string(&log_path).unwrap();
    let access: Vec<&str> = log.lines().filter(|l| l.contains("http request")).collect();
    assert_eq!(access.len(), 2, "{log}");
    assert!(
        access.iter().all(|l| l.contains("method=GET")
            && l.contains("path=/healthz")
            && l.contains("status=200")),
        "{access:?}"
    );
}

#[tokio::test]
async fn a_bad_http_listen_override_is_refused_with_the_reason() {
    let (code, _, stderr) = run(&["--http-listen", "8080"], "");
    assert_eq!(code, 1);
    assert!(
        stderr.contains("http.listen") && stderr.contains("IP:PORT"),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_bad_listen_override_is_refused_with_the_reason() {
    let (code, _, stderr) = run(&["--listen", "nowhere"], "");
    assert_eq!(code, 1);
    assert!(
        stderr.contains("server.listen") && stderr.contains("IP:PORT"),
        "{stderr}"
    );
}

#[tokio::test]
async fn connections_past_max_clients_are_told_the_server_is_full() {
    let server = TestServer::start_with("[limits]\nmax_clients = 2\n").await;
    let _a = server.client("a1").await;
    let _b = server.client("b1").await;
    let mut c = server.connect().await;
    assert_eq!(c.read_to_end().await, ["ERROR :Server is full"]);
}

#[tokio::test]
async fn connections_past_the_per_address_limit_are_refused() {
    let server = TestServer::start_with("[limits]\nmax_clients_per_ip = 1\n").await;
    let _a = server.client("a1").await;
    let mut c = server.connect().await;
    assert_eq!(
        c.read_to_end().await,
        ["ERROR :Too many connections from your address"]
    );
}

#[tokio::test]
async fn ipv4_and_ipv6_wildcards_can_be_listened_on_together() {
    // Binding both is what an admin writes for a dual-stack server; Linux
    // makes IPv6 sockets dual-stack by default, so without IPV6_V6ONLY the
    // second bind would fail. Ports are fixed by us, connections loopback.
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "[server]\nname = \"irc.test\"\nlisten = [\"0.0.0.0:{port}\", \"[::]:{port}\"]\ndata_dir = {:?}\n\
         [http]\nlisten = []\n",
        dir.path().display().to_string()
    );
    let config = parlor::Config::from_toml_str(&toml, "test").unwrap();
    let handle = match parlor::spawn(config).await {
        Ok(handle) => handle,
        Err(e) => panic!(
            "both wildcards should bind: {e:#} (a machine without IPv6 fails this \
             test: turn it on with `sysctl -w net.ipv6.conf.all.disable_ipv6=0`)"
        ),
    };
    assert_eq!(handle.local_addrs().len(), 2);
    let mut v4 = Client::connect(format!("127.0.0.1:{port}").parse().unwrap()).await;
    v4.register("four").await;
    let mut v6 = Client::connect(format!("[::1]:{port}").parse().unwrap()).await;
    v6.send("NICK six").await;
    v6.send("USER six 0 * :Six").await;
    // `::1` cannot stand as a parameter; it is shown as `0::1`.
    v6.expect_line(&numeric(
        "001",
        "six",
        ":Welcome to the Parlor IRC Network six!~six@0::1",
    ))
    .await;
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn account_commands_work_on_the_database_of_a_running_server() {
    let server = TestServer::start().await;
    let dir = server.data_dir.path().display().to_string();
    let account = |args: &[&str], stdin: &str| {
        let mut all = vec!["--data-dir", &dir, "account"];
        all.extend_from_slice(args);
        run(&all, stdin)
    };

    let (code, stdout, stderr) = account(
        &["create", "lena", "--email", "lena@example.org"],
        "lenas-password\n",
    );
    assert_eq!(
        (code, stdout.as_str()),
        (0, "account lena created\n"),
        "{stderr}"
    );

    // The running server sees it at once.
    let mut lena = server.client("lena").await;
    let lines = lena
        .exchange("PRIVMSG NickServ :IDENTIFY lenas-password")
        .await;
    assert!(lines.iter().any(|l| l.contains(" 900 ")), "{lines:?}");

    let (code, stdout, _) = account(&["list"], "");
    assert_eq!(code, 0);
    assert!(
        stdout.contains("lena ") && stdout.contains("lena@example.org"),
        "{stdout}"
    );
    assert!(stdout.ends_with("1 accounts\n"), "{stdout}");

    let (code, stdout, _) = account(&["show", "LENA"], "");
    assert_eq!(code, 0);
    assert!(
        stdout.starts_with("account:    lena\nemail:      lena@example.org\n"),
        "{stdout}"
    );
    assert!(!stdout.contains("argon2"), "never the hash: {stdout}");

    let (code, stdout, _) = account(&["passwd", "lena"], "a-new-password\n");
    assert_eq!((code, stdout.as_str()), (0, "password of lena changed\n"));
    let mut again = server.client("lena2").await;
    let lines = again
        .exchange("PRIVMSG NickServ :IDENTIFY lena a-new-password")
        .await;
    assert!(lines.iter().any(|l| l.contains(" 900 ")), "{lines:?}");

    let (code, _, stderr) = account(&["create", "mo"], "short\n");
    assert_eq!(code, 1);
    assert_eq!(
        stderr,
        "parlor account: cannot create mo: Passwords must be at least 8 characters long\n"
    );

    let (code, stdout, _) = account(&["delete", "lena"], "");
    assert_eq!((code, stdout.as_str()), (0, "account lena deleted\n"));
    let (code, _, stderr) = account(&["show", "lena"], "");
    assert_eq!(
        (code, stderr.as_str()),
        (1, "parlor account: no account lena\n")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_account_under_a_deleted_ones_name_does_not_inherit_its_channels() {
    let server = TestServer::start_with("[accounts]\nnick_protection = false\n").await;
    let dir = server.data_dir.path().display().to_string();
    let mut anna = server.client("anna").await;
    anna.exchange("REGISTER * * annas-password").await;
    join(&mut anna, "#club").await;
    let lines = anna.exchange("CS REGISTER #club").await;
    assert!(
        lines[0].contains("#club is now registered to anna"),
        "{lines:?}"
    );
    anna.send("QUIT").await;
    anna.read_to_end().await;

    // The admin deletes the account while the server runs; someone else
    // registers the name again.
    let (code, _, stderr) = run(&["--data-dir", &dir, "account", "delete", "anna"], "");
    assert_eq!(code, 0, "{stderr}");
    let mut other = server.client("anna").await;
    let lines = other.exchange("REGISTER * * someone-else").await;
    assert!(lines.iter().any(|l| l.contains(" 900 ")), "{lines:?}");
    let lines = other.exchange("JOIN #club").await;
    assert!(
        !lines
            .iter()
            .any(|l| l.contains("ChanServ") && l.contains("+o")),
        "{lines:?}"
    );
    assert_eq!(
        other.exchange("CS ACCESS #club ADD anna op").await,
        [":ChanServ!ChanServ@services. NOTICE anna :Only the founder of #club may do that"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn logs_export_prints_a_channels_history_as_text_or_json_lines() {
    let server = TestServer::start().await;
    let dir = server.data_dir.path().display().to_string();
    let mut bob = server.client("bob").await;
    join(&mut bob, "#c").await;
    bob.send("PRIVMSG #c :hello there").await;
    bob.send("PRIVMSG #c :\u{1}ACTION waves\u{1}").await;
    bob.exchange("PART #c :bye").await;
    // A history request waits for everything queued before it to be
    // written.
    join(&mut bob, "#other").await;
    bob.exchange("CHATHISTORY LATEST #other * 1").await;

    let export = |args: &[&str]| {
        let mut all = vec!["--data-dir", &dir, "logs", "export"];
        all.extend_from_slice(args);
        run(&all, "")
    };
    let (code, stdout, stderr) = export(&["#C"]);
    assert_eq!(code, 0, "{stderr}");
    let texts: Vec<&str> = stdout
        .lines()
        .map(|l| l.split_once("] ").unwrap().1)
        .collect();
    assert_eq!(
        texts,
        [
            "*** bob joined #c",
            "<bob> hello there",
            "* bob waves",
            "*** bob left #c (bye)"
        ]
    );
    let today = &stdout[1..11];
    assert!(stdout.starts_with(&format!("[{today} ")), "{stdout}");

    let (code, stdout, _) = export(&["#c", "--format", "jsonl"]);
    assert_eq!(code, 0);
    let second: serde_json::Value = serde_json::from_str(stdout.lines().nth(1).unwrap()).unwrap();
    assert_eq!(second["command"], "PRIVMSG");
    assert_eq!(second["source"], "bob!~bob@127.0.0.1");
    assert_eq!(second["params"], serde_json::json!(["#c", "hello there"]));

    // Bounds: nothing before 2000, nothing from 2100 on.
    let (_, stdout, _) = export(&["#c", "--until", "2000-01-01"]);
    assert_eq!(stdout, "");
    let (_, stdout, _) = export(&["#c", "--since", "2100-01-01"]);
    assert_eq!(stdout, "");
    let (code, _, stderr) = export(&["#c", "--since", "yesterday"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("is not a date"), "{stderr}");
    let (code, _, stderr) = export(&["nobody"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("is not a channel"), "{stderr}");
}

/// `parlor mkcert` writes a pair the server serves, prints its fingerprint
/// and how to trust it, and keeps files it would overwrite.
#[tokio::test]
async fn mkcert_writes_a_certificate_the_server_serves() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().display().to_string();
    let (code, stdout, stderr) = run(&["mkcert", "--out", &out, "--host", "localhost"], "");
    assert_eq!(code, 0, "{stderr}");
    let cert = std::fs::read_to_string(dir.path().join("cert.pem")).unwrap();
    let fingerprint = common::tls::fingerprint(&cert);
    assert!(
        stdout.contains(&format!("SHA-256 fingerprint: {fingerprint}")),
        "{stdout}"
    );
    assert!(
        stdout.contains("irssi:   /connect -tls -tls_cafile"),
        "{stdout}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("key.pem"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the key is its owner's only");
    }
    let (code, _, stderr) = run(&["mkcert", "--out", &out], "");
    assert_eq!(code, 1);
    assert!(stderr.contains("exists; --force replaces it"), "{stderr}");

    let pem = common::tls::Pem {
        cert: cert.clone(),
        key: std::fs::read_to_string(dir.path().join("key.pem")).unwrap(),
    };
    let (server, _files) = common::tls::tls_server(&pem, "").await;
    assert_eq!(
        common::tls::served_fingerprint(common::tls::tls_addr(&server), &cert)
            .await
            .unwrap(),
        fingerprint
    );
}
