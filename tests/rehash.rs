//! Reloading without a restart: REHASH (operators) and SIGHUP read the
//! configuration file again; a broken file changes nothing, a good one
//! changes the MOTD and the listeners while clients stay connected.

mod common;

use std::time::Duration;

use common::process::Running;
use common::*;

/// The MOTD lines a client is shown now.
async fn motd(client: &mut Client) -> Vec<String> {
    client
        .exchange("MOTD")
        .await
        .into_iter()
        .filter(|l| l.contains(" 372 "))
        .collect()
}

fn motd_config(text: &str) -> String {
    format!("{OPER_CONFIG}[server]\nmotd = \"{text}\"\n")
}

/// [`motd_config`] with `server.listen` too.
fn motd_and_listen(text: &str, listen: &str) -> String {
    format!("{OPER_CONFIG}[server]\nmotd = \"{text}\"\nlisten = {listen}\n")
}

#[tokio::test]
async fn a_broken_file_changes_nothing_and_the_error_names_the_key() {
    let (server, path) = TestServer::start_from_file(&motd_config("before")).await;
    let mut oper = server.client("oper").await;
    make_oper(&mut oper).await;
    let data_dir = server.data_dir.path().to_owned();

    std::fs::write(
        &path,
        test_config(
            &data_dir,
            &format!("{}[limits]\nsendq_bytes = \"big\"\n", motd_config("after")),
        ),
    )
    .unwrap();
    let lines = oper.exchange("REHASH").await;
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].starts_with(&format!(
            ":{SERVER} NOTICE oper :*** REHASH failed, the running configuration stays: {}: key `limits.sendq_bytes`",
            path.display()
        )),
        "{lines:?}"
    );
    assert_eq!(motd(&mut oper).await, [numeric("372", "oper", ":- before")]);

    std::fs::write(&path, "[server\nname = ").unwrap();
    let lines = oper.exchange("REHASH").await;
    assert!(lines[0].contains("REHASH failed"), "{lines:?}");
    assert_eq!(motd(&mut oper).await, [numeric("372", "oper", ":- before")]);
}

#[tokio::test]
async fn a_good_file_changes_the_motd_and_adds_a_listener_while_clients_stay() {
    let (server, path) = TestServer::start_from_file(&motd_config("before")).await;
    let data_dir = server.data_dir.path().to_owned();
    let mut oper = server.client("oper").await;
    make_oper(&mut oper).await;
    let mut bystander = server.client("bystander").await;
    bystander.exchange("JOIN #stay").await;

    let port = free_port();
    let added = format!("127.0.0.1:{port}");
    std::fs::write(
        &path,
        test_config(
            &data_dir,
            &motd_and_listen("after", &format!("[\"127.0.0.1:0\", \"{added}\"]")),
        ),
    )
    .unwrap();
    let lines = oper.exchange("REHASH").await;
    assert_eq!(
        lines,
        [
            numeric("382", "oper", &format!("{} :Rehashing", path.display())),
            format!(":{SERVER} NOTICE oper :*** REHASH: listening on {added} (IRC)"),
        ]
    );
    assert_eq!(
        motd(&mut bystander).await,
        [numeric("372", "bystander", ":- after")]
    );
    let mut newcomer = Client::connect(added.parse().unwrap()).await;
    newcomer.register("newcomer").await;
    newcomer.exchange("JOIN #stay").await;
    bystander
        .expect_line(&format!(":{} JOIN #stay", newcomer.mask()))
        .await;

    // Taken away again: no new connections there, the one made stays.
    std::fs::write(&path, test_config(&data_dir, &motd_config("after"))).unwrap();
    assert_eq!(
        oper.exchange("REHASH").await[1],
        format!(":{SERVER} NOTICE oper :*** REHASH: stopped listening on {added} (IRC)")
    );
    let refused = tokio::net::TcpStream::connect(&added).await;
    assert!(refused.is_err(), "the removed listener still accepts");
    newcomer.send("PRIVMSG #stay :still here").await;
    bystander
        .expect_line(&format!(":{} PRIVMSG #stay :still here", newcomer.mask()))
        .await;
}

#[tokio::test]
async fn keys_that_need_a_restart_are_named_and_kept() {
    let (server, path) = TestServer::start_from_file(OPER_CONFIG).await;
    let data_dir = server.data_dir.path().to_owned();
    let mut oper = server.client("oper").await;
    make_oper(&mut oper).await;
    let mut text = test_config(
        &data_dir,
        &format!("{OPER_CONFIG}[server]\ncasemapping = \"ascii\"\n"),
    );
    text = text.replace(&format!("name = \"{SERVER}\""), "name = \"other.test\"");
    std::fs::write(&path, text).unwrap();
    let lines = oper.exchange("REHASH").await;
    assert_eq!(
        lines.last().unwrap(),
        &format!(":{SERVER} NOTICE oper :*** REHASH: needs a restart to change, kept as running: server.name, server.casemapping")
    );
    // The name in use is still the old one.
    assert_eq!(
        oper.exchange("PING :x").await,
        [format!(":{SERVER} PONG {SERVER} :x")]
    );
}

#[tokio::test]
async fn only_operators_may_rehash() {
    let (server, _path) = TestServer::start_from_file(OPER_CONFIG).await;
    let mut someone = server.client("someone").await;
    assert_eq!(
        someone.exchange("REHASH").await,
        [numeric(
            "481",
            "someone",
            ":Permission Denied- You're not an IRC operator"
        )]
    );
}

/// SIGHUP does what REHASH does, for the binary an admin runs.
#[tokio::test]
async fn sighup_reloads_the_running_binary() {
    let data_dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let server = Running::start(data_dir.path(), port, "[server]\nmotd = \"before\"\n");
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut client = connect_with_retry(addr).await;
    client.register("watcher").await;
    assert_eq!(
        motd(&mut client).await,
        [numeric("372", "watcher", ":- before")]
    );
    std::fs::write(
        data_dir.path().join("test.toml"),
        format!(
            "[server]\nname = \"{SERVER}\"\nmotd = \"after\"\n[limits]\nflood_lines_per_sec = 0\n"
        ),
    )
    .unwrap();
    server.hang_up();
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        if motd(&mut client).await == [numeric("372", "watcher", ":- after")] {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "SIGHUP did not reload"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// REHASH reads the certificate files again (renewed in place) and puts a
/// changed STS policy in force; the TLS client connected before stays.
#[tokio::test]
async fn rehash_serves_renewed_certificates_and_a_new_sts_policy() {
    use common::tls;
    let files = tempfile::tempdir().unwrap();
    let old = tls::dev_cert();
    let keys = tls::write_cert(files.path(), &old);
    let tls_section = |duration: u32| {
        format!("[tls]\nlisten = [\"127.0.0.1:0\"]\nreload_check_secs = 0\nsts_duration_secs = {duration}\n{keys}")
    };
    let (server, path) =
        TestServer::start_from_file(&format!("{OPER_CONFIG}{}", tls_section(60))).await;
    let data_dir = server.data_dir.path().to_owned();
    let addr = tls::tls_addr(&server);
    let mut early = tls::connect(addr, &old.cert, None).await;
    early.register("oper").await;
    make_oper(&mut early).await;

    let new = tls::dev_cert();
    tls::write_cert(files.path(), &new);
    std::fs::write(
        &path,
        test_config(&data_dir, &format!("{OPER_CONFIG}{}", tls_section(120))),
    )
    .unwrap();
    let lines = early.exchange("REHASH").await;
    assert!(
        lines.contains(&format!(
            ":{SERVER} NOTICE oper :*** REHASH: TLS certificate read again"
        )),
        "{lines:?}"
    );
    assert_eq!(
        tls::served_fingerprint(addr, &new.cert).await.unwrap(),
        tls::fingerprint(&new.cert)
    );
    let mut late = tls::connect(addr, &new.cert, None).await;
    late.send("CAP LS 302").await;
    let ls = late.next_line().await;
    assert!(ls.split(' ').any(|cap| cap == "sts=duration=120"), "{ls}");
    // The session made with the old certificate goes on.
    assert_eq!(
        early.exchange("PING :alive").await,
        [format!(":{SERVER} PONG {SERVER} :alive")]
    );
}
