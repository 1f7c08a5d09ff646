//! Tests of the configuration: defaults, overlays and validation.

use super::*;

#[test]
fn embedded_defaults_parse() {
    let config = Config::embedded();
    assert_eq!(config.server.listen, [Listen::plain("127.0.0.1:6667")]);
    assert_eq!(config.server.casemapping, CaseMapping::Rfc1459);
}

#[test]
fn a_partial_file_keeps_the_other_defaults() {
    let config = Config::from_toml_str("[limits]\nnick_length = 20\n", "t").unwrap();
    assert_eq!(config.limits.nick_length, 20);
    assert_eq!(config.limits.topic_length, 390);
}

#[test]
fn unknown_keys_name_their_path() {
    let err = Config::from_toml_str("[limits]\nnick_lenght = 20\n", "t").unwrap_err();
    let text = err.to_string();
    assert!(text.contains("limits"), "{text}");
    assert!(text.contains("nick_lenght"), "{text}");
}

#[test]
fn bad_values_say_what_is_allowed() {
    let err = Config::from_toml_str("[server]\ncasemapping = \"utf8\"\n", "t").unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("server.casemapping") && text.contains("rfc1459"),
        "{text}"
    );
    let err = Config::from_toml_str("[server]\nlisten = [\"nope\"]\n", "t").unwrap_err();
    assert!(err.to_string().contains("server.listen"), "{err}");
}

#[test]
fn the_ipv6_prefix_is_1_to_128_bits() {
    assert_eq!(Config::embedded().limits.ipv6_prefix_len, 64);
    for good in [1, 48, 128] {
        let text = format!("[limits]\nipv6_prefix_len = {good}\n");
        let config = Config::from_toml_str(&text, "t").unwrap();
        assert_eq!(config.limits.ipv6_prefix_len, good);
    }
    for bad in [0, 129] {
        let text = format!("[limits]\nipv6_prefix_len = {bad}\n");
        let err = Config::from_toml_str(&text, "t").unwrap_err().to_string();
        assert!(
            err.contains("limits.ipv6_prefix_len") && err.contains("allowed 1 to 128"),
            "{err}"
        );
    }
}

#[test]
fn the_send_buffer_is_the_kernels_unless_set() {
    assert_eq!(Config::embedded().limits.send_buffer_bytes, 0);
    for good in [0, 2048, 65536, 16 << 20] {
        let text = format!("[limits]\nsend_buffer_bytes = {good}\n");
        let config = Config::from_toml_str(&text, "t").unwrap();
        assert_eq!(config.limits.send_buffer_bytes, good);
    }
    for bad in [1, 2047, (16 << 20) + 1] {
        let text = format!("[limits]\nsend_buffer_bytes = {bad}\n");
        let err = Config::from_toml_str(&text, "t").unwrap_err().to_string();
        assert!(
            err.contains("limits.send_buffer_bytes") && err.contains("or 2048 to 16777216"),
            "{err}"
        );
    }
}

#[test]
fn automatic_threads_leave_a_core_for_the_other_busy_threads() {
    let automatic = Config::embedded().server;
    assert_eq!(automatic.threads, 0);
    assert_eq!(automatic.runtime_threads(1), 1);
    assert_eq!(automatic.runtime_threads(2), 1);
    assert_eq!(automatic.runtime_threads(16), 15);
    let set = Config::from_toml_str("[server]\nthreads = 3\n", "t").unwrap();
    assert_eq!(set.server.runtime_threads(2), 3, "a set count is kept");
    let err = Config::from_toml_str("[server]\nthreads = 5000\n", "t").unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("server.threads") && text.contains("1024"),
        "{text}"
    );
}

#[test]
fn a_login_host_must_stand_in_a_mask() {
    for bad in ["user {account}", "@{account}", ":x", "a!b"] {
        let text = format!("[accounts]\nlogin_host = {bad:?}\n");
        let err = Config::from_toml_str(&text, "t").unwrap_err();
        assert!(err.to_string().contains("accounts.login_host"), "{err}");
    }
    let config =
        Config::from_toml_str("[accounts]\nlogin_host = \"user/{account}\"\n", "t").unwrap();
    assert_eq!(config.accounts.login_host, "user/{account}");
}

#[test]
fn a_listener_is_an_address_or_a_table_that_marks_it_for_proxy_headers() {
    let text = "[server]\nlisten = [\"127.0.0.1:6667\", { address = \"[::]:6668\", proxy = true, proxy_from = [\"10.0.0.0/8\", \"2001:db8::1\"] }]\n";
    let config = Config::from_toml_str(text, "t").unwrap();
    let listen = &config.server.listen;
    assert_eq!(listen[0], Listen::plain("127.0.0.1:6667"));
    assert_eq!(listen[1].address, "[::]:6668");
    assert!(listen[1].proxy);
    assert!(listen[1].proxy_from[0].contains("10.1.2.3".parse().unwrap()));
    assert!(listen[1].proxy_from[1].contains("2001:db8::1".parse().unwrap()));
    assert_eq!(config.listen_addrs().len(), 2);

    // The same as blocks of their own lines.
    let text = "[[server.listen]]\naddress = \"127.0.0.1:6667\"\n\n\
                [[server.listen]]\naddress = \"127.0.0.1:6668\"\nproxy = true\n";
    let config = Config::from_toml_str(text, "t").unwrap();
    assert_eq!(config.server.listen[0], Listen::plain("127.0.0.1:6667"));
    assert!(config.server.listen[1].proxy);
    // Left out, proxy_from believes loopback alone.
    let believed = &config.server.listen[1].proxy_from;
    for (ip, held) in [("127.0.0.1", true), ("127.9.9.9", true), ("::1", true)]
        .into_iter()
        .chain([("10.0.0.1", false), ("2001:db8::1", false)])
    {
        let ip = ip.parse().unwrap();
        assert_eq!(believed.iter().any(|net| net.contains(ip)), held, "{ip}");
    }
}

#[test]
fn a_bad_listener_table_is_named() {
    for (text, says) in [
        ("{ address = \"127.0.0.1:6667\", prxy = true }", "prxy"),
        ("{ proxy = true }", "address"),
        ("{ address = \"localhost:6667\", proxy = true }", "IP:PORT"),
        (
            "{ address = \"127.0.0.1:6667\", proxy = true, proxy_from = [\"10.0.0.0/33\"] }",
            "10.0.0.0/33",
        ),
        (
            "{ address = \"127.0.0.1:6667\", proxy_from = [\"10.0.0.0/8\"] }",
            "without proxy = true",
        ),
        (
            "{ address = \"127.0.0.1:6667\", proxy = true, proxy_from = [] }",
            "empty proxy_from",
        ),
        ("7", "IP:PORT"),
    ] {
        let err = Config::from_toml_str(&format!("[server]\nlisten = [{text}]\n"), "t")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("server.listen") && err.contains(says),
            "{text}: {err}"
        );
    }
}

#[test]
fn webirc_blocks_need_a_hash_and_the_gateways_addresses() {
    let hash = "$argon2id$v=19$m=19456,t=2,p=1$n4eHqGrW919MBYj1WHAWrA$UdXnbhUtNg65M+NsaIbx/Ts16sPI5wCsaLnW01Y6pMw";
    let block = |name: &str, hash: &str, hosts: &str| {
        format!("[[webirc]]\nname = {name:?}\npassword_hash = {hash:?}\nhosts = {hosts}\n")
    };
    let config = Config::from_toml_str(
        &block("lounge", hash, "[\"127.0.0.1\", \"10.0.0.0/8\"]"),
        "t",
    )
    .unwrap();
    assert_eq!(config.webirc[0].name, "lounge");
    assert!(config.webirc[0].hosts[1].contains("10.9.8.7".parse().unwrap()));
    assert!(Config::embedded().webirc.is_empty());
    for (text, key) in [
        (block("lounge", hash, "[]"), "webirc.hosts"),
        (
            block("lounge", "hunter2", "[\"127.0.0.1\"]"),
            "webirc.password_hash",
        ),
        (block("the lounge", hash, "[\"127.0.0.1\"]"), "webirc.name"),
        (
            block("lounge", hash, "[\"gateway.example\"]"),
            "webirc[0].hosts[0]",
        ),
    ] {
        let err = Config::from_toml_str(&text, "t").unwrap_err().to_string();
        assert!(err.contains(key), "{text}: {err}");
    }
}

#[test]
fn acme_needs_domains_a_tls_listener_and_no_certificate_files() {
    let acme = |tls: &str, acme: &str| format!("[tls]\n{tls}\n[tls.acme]\n{acme}\n");
    let listen = "listen = [\"0.0.0.0:6697\"]";
    let config = Config::from_toml_str(
        &acme(
            listen,
            "domains = [\"irc.example.org\"]\ncontact = \"a@example.org\"",
        ),
        "t",
    )
    .unwrap();
    let taken = config.tls.acme.as_ref().unwrap();
    assert_eq!(taken.directory, crate::config::acme::LETS_ENCRYPT);
    assert_eq!(taken.contact_uri().as_deref(), Some("mailto:a@example.org"));
    assert_eq!(
        (taken.check_secs, taken.retry_first_ms, taken.retry_max_secs),
        (3600, 5000, 3600)
    );
    assert!(Config::embedded().tls.acme.is_none());
    for (text, key) in [
        (acme(listen, "domains = []"), "tls.acme.domains"),
        (
            acme(listen, "domains = [\"*.example.org\"]"),
            "tls.acme.domains",
        ),
        (acme("", "domains = [\"irc.example.org\"]"), "tls.acme"),
        (
            acme(
                &format!("{listen}\ncert_file = \"c.pem\""),
                "domains = [\"a.org\"]",
            ),
            "tls.cert_file",
        ),
        (
            acme(listen, "domains = [\"a.org\"]\ncontact = \"nobody\""),
            "tls.acme.contact",
        ),
        (
            acme(
                listen,
                "domains = [\"a.org\"]\ndirectory = \"http://ca.test/dir\"",
            ),
            "tls.acme.directory",
        ),
        (
            acme(listen, "domains = [\"a.org\"]\nretry_first_ms = 0"),
            "tls.acme.retry_first_ms",
        ),
        (acme(listen, "domains = [\"a.org\"]\nsoon = 1"), "soon"),
        (
            format!(
                "[http]\nlisten = []\n{}",
                acme(listen, "domains = [\"a.org\"]")
            ),
            "http.listen",
        ),
    ] {
        let err = Config::from_toml_str(&text, "t").unwrap_err().to_string();
        assert!(err.contains(key), "{text}: {err}");
    }
}
