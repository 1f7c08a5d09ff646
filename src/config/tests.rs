//! Tests of the configuration: defaults, overlays and validation.

use super::*;

#[test]
fn embedded_defaults_parse() {
    let config = Config::embedded();
    assert_eq!(config.server.listen, ["127.0.0.1:6667"]);
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
