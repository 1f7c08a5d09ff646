//! SASL message parsing: SCRAM-SHA-256's client-first and client-final
//! messages (`src/scram.rs`) and PLAIN's fields (`commands::plain_fields`),
//! as a client's decoded `AUTHENTICATE` data reaches them.
//!
//! The input is one message, or two joined by a newline (client-first,
//! then client-final). Beyond "no panic":
//! - PLAIN fields that were accepted are exactly the message's three parts;
//! - a client-final from the input (which cannot carry a valid proof) is
//!   never accepted;
//! - for every client-first the server accepts, a proof computed the way
//!   a client would (RFC 5802 section 3, written here independently of the
//!   server's code) verifies, and the server's signature in return is the
//!   one the client expects; the same proof with one bit changed does not.

#![no_main]

use std::sync::OnceLock;

use base64::{engine::general_purpose::STANDARD as BASE64, Engine as _};
use hmac::{Hmac, Mac};
use libfuzzer_sys::fuzz_target;
use parlor::commands::plain_fields;
use parlor::scram::{self, ScramCredentials};
use sha2::{Digest, Sha256};

const PASSWORD: &str = "pencil";
/// Fixed so a run is repeatable; the server's own nonces are random.
const SERVER_NONCE: &str = "3rfcNHYJY1ZVvWVs7j";
/// PBKDF2 rounds for the fuzz credentials: the parsing under test does not
/// depend on them, and 4096 would spend every run in SHA-256.
const ITERATIONS: u32 = 1;

fn credentials() -> &'static ScramCredentials {
    static CREDENTIALS: OnceLock<ScramCredentials> = OnceLock::new();
    CREDENTIALS.get_or_init(|| ScramCredentials::derive(PASSWORD, b"fuzz salt", ITERATIONS))
}

fuzz_target!(|data: &[u8]| {
    if let Some((authzid, authcid, password)) = plain_fields(data) {
        let joined = [authzid, authcid, password].join("\0");
        assert_eq!(joined.as_bytes(), data, "PLAIN fields lost or gained bytes");
    }

    let (first, last) = match data.iter().position(|&b| b == b'\n') {
        Some(newline) => (&data[..newline], Some(&data[newline + 1..])),
        None => (data, None),
    };
    let Ok(client_first) = scram::parse_client_first(first) else {
        return;
    };
    let credentials = credentials();
    if let Some(last) = last {
        let (_, sent) = scram::server_first(client_first.clone(), credentials, SERVER_NONCE);
        assert!(
            sent.verify_client_final(last).is_err(),
            "a proof nobody computed was accepted: {last:?}"
        );
    }
    honest_exchange(first, client_first, last.unwrap_or_default());
});

/// Runs the exchange with a proof computed as a client knowing the
/// password computes it; `extensions` from the input, when they are
/// attributes, go between the nonce and the proof.
fn honest_exchange(first: &[u8], client_first: scram::ClientFirst, extensions: &[u8]) {
    let (server_first, sent) = scram::server_first(client_first, credentials(), SERVER_NONCE);
    let nonce = attribute(&server_first, "r=").expect("server-first has a nonce");
    let salt = BASE64
        .decode(attribute(&server_first, "s=").expect("server-first has a salt"))
        .expect("the salt is base64");
    let iterations: u32 = attribute(&server_first, "i=")
        .and_then(|i| i.parse().ok())
        .expect("server-first has an iteration count");
    assert!(nonce.starts_with(
        std::str::from_utf8(first)
            .ok()
            .and_then(client_nonce)
            .unwrap()
    ));

    let first = std::str::from_utf8(first).expect("accepted, so UTF-8");
    let header_end = first.match_indices(',').nth(1).expect("a GS2 header").0 + 1;
    let (gs2_header, bare) = first.split_at(header_end);
    let mut without_proof = format!("c={},r={nonce}", BASE64.encode(gs2_header));
    if let Ok(extensions) = std::str::from_utf8(extensions) {
        if extensions.split(',').all(is_attribute) && !extensions.starts_with("p=") {
            without_proof = format!("{without_proof},{extensions}");
        }
    }

    let mut salted = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(PASSWORD.as_bytes(), &salt, iterations, &mut salted);
    let client_key = hmac(&salted, b"Client Key");
    let auth_message = format!("{bare},{server_first},{without_proof}");
    let signature = hmac(&Sha256::digest(client_key), auth_message.as_bytes());
    let mut proof: Vec<u8> = client_key
        .iter()
        .zip(signature)
        .map(|(k, s)| k ^ s)
        .collect();
    let expected = hmac(&hmac(&salted, b"Server Key"), auth_message.as_bytes());

    // A changed bit, chosen by the message, must make the same proof fail.
    let (_, forged_sent) = scram::server_first(
        scram::parse_client_first(first.as_bytes()).unwrap(),
        credentials(),
        SERVER_NONCE,
    );
    let bit = auth_message.len() % (proof.len() * 8);
    let mut forged = proof.clone();
    forged[bit / 8] ^= 1 << (bit % 8);
    let forged = format!("{without_proof},p={}", BASE64.encode(&forged));
    assert_eq!(
        forged_sent.verify_client_final(forged.as_bytes()),
        Err(scram::ScramError::InvalidProof),
        "a changed proof was accepted"
    );

    let client_final = format!(
        "{without_proof},p={}",
        BASE64.encode(std::mem::take(&mut proof))
    );
    let server_final = sent
        .verify_client_final(client_final.as_bytes())
        .unwrap_or_else(|e| panic!("an honest proof was refused ({e}): {client_final:?}"));
    assert_eq!(server_final, format!("v={}", BASE64.encode(expected)));
}

/// The value of the attribute `name` (e.g. `r=`) in a comma-separated
/// SCRAM message.
fn attribute<'a>(message: &'a str, name: &str) -> Option<&'a str> {
    message.split(',').find_map(|part| part.strip_prefix(name))
}

/// The client nonce of an accepted client-first: its `r=` after the
/// GS2 header.
fn client_nonce(first: &str) -> Option<&str> {
    attribute(first.splitn(3, ',').nth(2)?, "r=")
}

/// RFC 5802 `attr-val`: a letter, `=`, then a value without commas.
fn is_attribute(part: &str) -> bool {
    let bytes = part.as_bytes();
    bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b'='
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}
