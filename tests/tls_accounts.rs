//! What TLS changes for accounts and policy: the `sts` capability on each
//! kind of port, SASL EXTERNAL with a certificate registered through
//! NickServ CERT, and passwords refused over plaintext.

mod common;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use common::tls::{self, tls_addr, tls_server, tls_server_with};
use common::*;

/// The `sts` entry of a `CAP LS 302` reply, if any.
async fn sts_offered(client: &mut Client) -> Option<String> {
    client.send("CAP LS 302").await;
    let ls = client.next_line().await;
    let list = ls.split(" :").nth(1).expect("a capability list").to_owned();
    client.send("CAP END").await;
    list.split(' ')
        .find(|cap| *cap == "sts" || cap.starts_with("sts="))
        .map(str::to_owned)
}

#[tokio::test]
async fn sts_sends_plaintext_clients_to_the_tls_port_and_keeps_tls_clients_there() {
    let pem = tls::dev_cert();
    let (server, _files) = tls_server(&pem, "").await;
    let port = tls_addr(&server).port();
    let mut plain = server.connect().await;
    assert_eq!(
        sts_offered(&mut plain).await,
        Some(format!("sts=port={port}"))
    );
    let mut secure = tls::connect(tls_addr(&server), &pem.cert, None).await;
    assert_eq!(
        sts_offered(&mut secure).await.as_deref(),
        Some("sts=duration=2592000")
    );
    // Without 302 there are no values: the name alone.
    let mut old = server.connect().await;
    old.send("CAP LS").await;
    let ls = old.next_line().await;
    assert!(ls.split(' ').any(|cap| cap == "sts"), "{ls}");
    // Never requested: a client acts on the value alone.
    assert_eq!(
        old.exchange("CAP REQ :sts").await,
        [format!(":{SERVER} CAP * NAK :sts")]
    );
}

#[tokio::test]
async fn sts_takes_its_port_duration_and_preload_from_the_config() {
    let pem = tls::dev_cert();
    let (server, _files) = tls_server_with(
        &pem,
        "",
        "sts_port = 6697\nsts_duration_secs = 31536000\nsts_preload = true\n",
    )
    .await;
    let mut plain = server.connect().await;
    assert_eq!(
        sts_offered(&mut plain).await.as_deref(),
        Some("sts=port=6697")
    );
    let mut secure = tls::connect(tls_addr(&server), &pem.cert, None).await;
    assert_eq!(
        sts_offered(&mut secure).await.as_deref(),
        Some("sts=duration=31536000,preload")
    );
}

#[tokio::test]
async fn no_sts_without_tls_or_when_turned_off() {
    let server = TestServer::start().await;
    let mut plain = server.connect().await;
    assert_eq!(sts_offered(&mut plain).await, None);
    let pem = tls::dev_cert();
    let (server, _files) = tls_server_with(&pem, "", "sts = false\n").await;
    let mut plain = server.connect().await;
    assert_eq!(sts_offered(&mut plain).await, None);
}

/// Logs in with SASL EXTERNAL during registration; returns every line up
/// to the end of the exchange.
async fn external(client: &mut Client, nick: &str, authzid: &str) -> Vec<String> {
    client.send("CAP REQ :sasl").await;
    client
        .expect_line(&format!(":{SERVER} CAP * ACK :sasl"))
        .await;
    client.send(&format!("NICK {nick}")).await;
    client.send(&format!("USER {nick} 0 * :Real {nick}")).await;
    client.nick = nick.to_owned();
    client.send("AUTHENTICATE EXTERNAL").await;
    let mut lines = vec![client.next_line().await];
    if lines[0] == "AUTHENTICATE +" {
        let payload = match authzid {
            "" => "+".to_owned(),
            name => BASE64.encode(name),
        };
        client.send(&format!("AUTHENTICATE {payload}")).await;
        loop {
            let line = client.next_line().await;
            let done = line.contains(" 903 ") || line.contains(" 904 ");
            lines.push(line);
            if done {
                break;
            }
        }
    }
    lines
}

#[tokio::test]
async fn sasl_external_logs_in_with_a_certificate_registered_by_nickserv_cert() {
    let pem = tls::dev_cert();
    let identity = tls::dev_cert();
    let certfp = tls::fingerprint(&identity.cert);
    let (server, _files) = tls_server(&pem, FAST_ACCOUNTS).await;
    let addr = tls_addr(&server);

    // Registered over TLS with the certificate, then added with no
    // argument: the connection's own.
    let mut owner = tls::connect(addr, &pem.cert, Some(&identity)).await;
    owner.register("erin").await;
    owner.exchange("REGISTER * * erin-password").await;
    let ns = "NickServ!NickServ@services.";
    assert_eq!(
        owner.exchange("NS CERT ADD").await,
        [format!(
            ":{ns} NOTICE erin :Certificate {certfp} added to erin: it logs in with SASL EXTERNAL"
        )]
    );
    assert_eq!(
        owner.exchange("NS CERT LIST").await,
        [
            format!(":{ns} NOTICE erin :Certificates of erin:"),
            format!(":{ns} NOTICE erin :  {certfp}"),
        ]
    );
    owner.send("QUIT").await;
    owner.read_to_end().await;

    let mut again = tls::connect(addr, &pem.cert, Some(&identity)).await;
    let lines = external(&mut again, "erin", "").await;
    assert_eq!(lines[0], "AUTHENTICATE +");
    assert!(
        lines.contains(&numeric(
            "900",
            "erin",
            "erin!~erin@127.0.0.1 erin :You are now logged in as erin"
        )),
        "{lines:?}"
    );
    assert_eq!(
        lines.last().unwrap(),
        &numeric("903", "erin", ":SASL authentication successful")
    );

    // Naming the account works too; naming another does not.
    let mut named = tls::connect(addr, &pem.cert, Some(&identity)).await;
    let lines = external(&mut named, "erin2", "erin").await;
    assert!(lines.last().unwrap().contains(" 903 "), "{lines:?}");
    let mut other = tls::connect(addr, &pem.cert, Some(&identity)).await;
    let lines = external(&mut other, "erin3", "somebody").await;
    assert_eq!(
        lines.last().unwrap(),
        &numeric("904", "erin3", ":SASL authentication failed")
    );

    // Removed, it logs in no more.
    let mut manager = tls::connect(addr, &pem.cert, None).await;
    manager.register("manager").await;
    manager.exchange("NS IDENTIFY erin erin-password").await;
    assert_eq!(
        manager
            .exchange(&format!("NS CERT DEL {}", certfp.to_uppercase()))
            .await,
        [format!(
            ":{ns} NOTICE manager :Certificate {certfp} removed from erin"
        )]
    );
    let mut removed = tls::connect(addr, &pem.cert, Some(&identity)).await;
    let lines = external(&mut removed, "erin4", "").await;
    assert_eq!(
        lines.last().unwrap(),
        &numeric("904", "erin4", ":SASL authentication failed")
    );
}

#[tokio::test]
async fn sasl_external_needs_a_certificate() {
    let pem = tls::dev_cert();
    let (server, _files) = tls_server(&pem, FAST_ACCOUNTS).await;
    let mut plain = server.connect().await;
    let lines = external(&mut plain, "frank", "").await;
    assert_eq!(
        lines,
        [numeric(
            "904",
            "frank",
            ":SASL authentication failed: EXTERNAL needs a TLS client certificate"
        )]
    );
    // A certificate nobody registered logs in to nothing.
    let stranger = tls::dev_cert();
    let mut unknown = tls::connect(tls_addr(&server), &pem.cert, Some(&stranger)).await;
    let lines = external(&mut unknown, "grace", "").await;
    assert_eq!(
        lines.last().unwrap(),
        &numeric("904", "grace", ":SASL authentication failed")
    );
}

#[tokio::test]
async fn a_certificate_belongs_to_one_account() {
    let pem = tls::dev_cert();
    let identity = tls::dev_cert();
    let certfp = tls::fingerprint(&identity.cert);
    let (server, _files) = tls_server(&pem, FAST_ACCOUNTS).await;
    let ns = "NickServ!NickServ@services.";
    let mut first = server.account_holder("heidi").await;
    first.exchange(&format!("NS CERT ADD {certfp}")).await;
    let mut second = server.account_holder("ivan").await;
    assert_eq!(
        second.exchange(&format!("NS CERT ADD {certfp}")).await,
        [format!(
            ":{ns} NOTICE ivan :Certificate {certfp} belongs to another account"
        )]
    );
    assert_eq!(
        second.exchange("NS CERT ADD").await,
        [format!(
            ":{ns} NOTICE ivan :This connection shows no client certificate: connect over TLS with one, or name a fingerprint"
        )]
    );
    assert_eq!(
        second.exchange("NS CERT ADD nothex").await,
        [format!(
            ":{ns} NOTICE ivan :A fingerprint is the SHA-256 of the certificate: 64 hex digits"
        )]
    );
}

/// Over plaintext from another host (loopback not trusted here, to stand
/// for one), passwords are refused before they are checked, and why is
/// said; SCRAM, which sends no password, and TLS are fine.
#[tokio::test]
async fn passwords_are_refused_over_plaintext_when_configured() {
    let pem = tls::dev_cert();
    let (server, _files) = tls_server_with(
        &pem,
        &format!("{FAST_ACCOUNTS}{OPER_CONFIG}"),
        "plaintext_passwords_loopback = false\n",
    )
    .await;
    let port = tls_addr(&server).port();
    let why = format!("not accepted over a plaintext connection; reconnect with TLS (port {port})");

    let mut plain = server.connect().await;
    plain.send("CAP REQ :sasl").await;
    plain
        .expect_line(&format!(":{SERVER} CAP * ACK :sasl"))
        .await;
    plain.send("NICK judy").await;
    plain.send("USER judy 0 * :Judy").await;
    plain.nick = "judy".to_owned();
    assert_eq!(
        plain.exchange("AUTHENTICATE PLAIN").await,
        [numeric(
            "904",
            "judy",
            &format!(":SASL authentication failed: PLAIN {why}")
        )]
    );
    plain.send("CAP END").await;
    plain
        .skip_until(|l| l.contains(" 376 ") || l.contains(" 422 "))
        .await;
    assert_eq!(
        plain.exchange("OPER oper password").await,
        [numeric("464", "judy", &format!(":Passwords are {why}"))]
    );
    assert_eq!(
        plain.exchange("REGISTER * * judy-password").await,
        [format!(
            ":{SERVER} FAIL REGISTER UNACCEPTABLE_PASSWORD * :Passwords are {why}"
        )]
    );
    assert_eq!(
        plain.exchange("NS IDENTIFY judy judy-password").await,
        [format!(
            ":NickServ!NickServ@services. NOTICE judy :Passwords are {why}"
        )]
    );

    // Over TLS the same commands are taken.
    let mut secure = tls::connect(tls_addr(&server), &pem.cert, None).await;
    secure.register("kim").await;
    let lines = secure.exchange("REGISTER * * kim-password").await;
    assert!(lines.iter().any(|l| l.contains(" 900 ")), "{lines:?}");
    make_oper(&mut secure).await;
}

/// On the defaults ("auto"), plaintext from this host is trusted, and
/// without TLS nothing is refused anywhere.
#[tokio::test]
async fn loopback_and_servers_without_tls_take_passwords_over_plaintext() {
    let pem = tls::dev_cert();
    let (server, _files) = tls_server(&pem, &format!("{FAST_ACCOUNTS}{OPER_CONFIG}")).await;
    let mut local = server.client("leo").await;
    make_oper(&mut local).await;
    let server = TestServer::start_with(&format!(
        "{FAST_ACCOUNTS}{OPER_CONFIG}[tls]\nplaintext_passwords_loopback = false\n"
    ))
    .await;
    let mut plain = server.client("mia").await;
    make_oper(&mut plain).await;
}

/// PASS, when the server has a password: refused over plaintext from
/// another host, so registration fails as without one; taken over TLS.
#[tokio::test]
async fn a_server_password_is_refused_over_plaintext_and_taken_over_tls() {
    let pem = tls::dev_cert();
    let (server, _files) = tls_server_with(
        &pem,
        "[server]\npassword = \"letmein\"\n",
        "plaintext_passwords_loopback = false\n",
    )
    .await;
    let port = tls_addr(&server).port();
    let mut plain = server.connect().await;
    plain.send("PASS letmein").await;
    assert_eq!(
        plain.next_line().await,
        numeric(
            "464",
            "*",
            &format!(":Passwords are not accepted over a plaintext connection; reconnect with TLS (port {port})")
        )
    );
    plain.send("NICK nina").await;
    plain.send("USER nina 0 * :Nina").await;
    assert_eq!(
        plain.next_line().await,
        numeric("464", "nina", ":Password incorrect")
    );

    let mut secure = tls::connect(tls_addr(&server), &pem.cert, None).await;
    secure.send("PASS letmein").await;
    secure.register("olga").await;
}
