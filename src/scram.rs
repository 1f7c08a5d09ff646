//! SASL SCRAM-SHA-256 (RFC 5802, RFC 7677): the server's side of the
//! exchange and the credentials kept at registration.
//!
//! Everything here is pure and synchronous: the caller owns the socket and
//! the account store, feeds the client's messages in, and sends back what
//! comes out. Parsing never panics, whatever bytes a client sends.
//!
//! The exchange is a typestate: [`parse_client_first`] gives a
//! [`ClientFirst`], [`server_first`] consumes it (with the account's
//! [`ScramCredentials`], or a [`ScramCredentials::decoy`] for a name with no
//! account) and gives the server-first-message plus a [`ServerFirstSent`],
//! whose [`ServerFirstSent::verify_client_final`] consumes it again, so a
//! proof can be checked only once per nonce.
//!
//! Not done, and why:
//! - No SASLprep (RFC 4013). Passwords are used as their raw UTF-8 bytes
//!   and usernames are compared exactly as sent (after `=2C`/`=3D`
//!   unescaping). For ASCII text without control characters SASLprep is the
//!   identity, so this agrees with every client there; a client that does
//!   normalize a non-ASCII password (e.g. NFKC, or mapping non-ASCII spaces)
//!   may compute different keys and fail to log in with a correct password.
//!   Implementing the stringprep tables is not worth a dependency for that.
//! - No channel binding (`SCRAM-SHA-256-PLUS`): we never advertise it, so a
//!   `p=` client is refused and `y` is accepted (RFC 5802 section 6).
//! - No mandatory extensions (`m=`): none are defined, the RFC says refuse.

use std::fmt;

use base64::{engine::general_purpose::STANDARD as BASE64, Engine as _};
use hmac::{Hmac, Mac};
use rand_core::{OsRng, RngCore};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// PBKDF2 rounds for new credentials. RFC 7677 sets 4096 as the minimum;
/// clients (irssi, for one) recompute the salted password at every login
/// without caching it, so much more would slow every client's connect.
pub const DEFAULT_ITERATIONS: u32 = 4096;

const SALT_LEN: usize = 16;
const KEY_LEN: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScramError {
    #[error("malformed SCRAM message: {0}")]
    Malformed(&'static str),
    #[error("channel binding is not supported")]
    ChannelBindingNotSupported,
    #[error("mandatory SCRAM extension is not supported")]
    ExtensionNotSupported,
    #[error("nonce does not match the one sent")]
    NonceMismatch,
    #[error("channel binding data does not match the GS2 header")]
    ChannelBindingMismatch,
    #[error("invalid proof")]
    InvalidProof,
}

/// What the server keeps per account: enough to check a proof and prove
/// itself back, but not enough to log in as the user. (Equality is for
/// bookkeeping and tests: proofs are checked in constant time by
/// [`ServerFirstSent::verify_client_final`].)
#[derive(Clone, PartialEq, Eq)]
pub struct ScramCredentials {
    pub salt: Vec<u8>,
    pub iterations: u32,
    pub stored_key: Vec<u8>,
    pub server_key: Vec<u8>,
}

impl fmt::Debug for ScramCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The keys are password equivalents for this server: keep them out
        // of logs.
        f.debug_struct("ScramCredentials")
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

impl ScramCredentials {
    /// The keys of RFC 5802 section 3, from the password's UTF-8 bytes.
    pub fn derive(password: &str, salt: &[u8], iterations: u32) -> ScramCredentials {
        let mut salted = [0u8; KEY_LEN];
        pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), salt, iterations, &mut salted);
        let client_key = hmac(&salted, &[b"Client Key"]);
        ScramCredentials {
            salt: salt.to_vec(),
            iterations,
            stored_key: Sha256::digest(client_key).to_vec(),
            server_key: hmac(&salted, &[b"Server Key"]).to_vec(),
        }
    }

    /// Credentials for `password` with a fresh random salt.
    pub fn generate(password: &str, iterations: u32) -> ScramCredentials {
        ScramCredentials::derive(password, &random_bytes::<SALT_LEN>(), iterations)
    }

    /// Stand-in credentials for a name with no account, so the exchange
    /// runs and fails exactly like a wrong password. The salt is stable per
    /// name (a changing salt would mark the name as unknown across two
    /// attempts); pass the name as the account lookup normalizes it, so its
    /// variants share a salt as a real account's would. The keys are random,
    /// so no proof matches: that would need a SHA-256 preimage.
    pub fn decoy(username: &str, server_secret: &[u8]) -> ScramCredentials {
        let mac = hmac(server_secret, &[b"scram decoy salt\0", username.as_bytes()]);
        ScramCredentials {
            salt: mac[..SALT_LEN].to_vec(),
            iterations: DEFAULT_ITERATIONS,
            stored_key: random_bytes::<KEY_LEN>().to_vec(),
            server_key: random_bytes::<KEY_LEN>().to_vec(),
        }
    }
}

/// HMAC-SHA-256 of the concatenation of `parts`.
fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; KEY_LEN] {
    // Cannot fail: HMAC hashes keys longer than a block and pads shorter
    // ones, so hmac's `new_from_slice` accepts every length, empty too.
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC accepts any key length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// Compares without an early exit, so the time taken does not tell an
/// attacker how many leading bytes of a key they got right. Lengths are
/// public (always 32 here), so differing lengths may return at once.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn xor(a: &[u8], b: &[u8]) -> Vec<u8> {
    a.iter().zip(b).map(|(x, y)| x ^ y).collect()
}

/// Panics only if the OS has no randomness to give, when nothing secure
/// can be done anyway.
fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    OsRng.fill_bytes(&mut bytes);
    bytes
}

/// A server nonce part: 24 random bytes in base64 (no `,`, all printable).
pub fn random_nonce() -> String {
    BASE64.encode(random_bytes::<24>())
}

/// A parsed client-first-message.
#[derive(Debug, Clone)]
pub struct ClientFirst {
    /// Echoed back (base64) in the client-final's `c=`.
    gs2_header: String,
    authzid: Option<String>,
    username: String,
    client_nonce: String,
    /// Verbatim, as it is part of the AuthMessage both sides sign.
    bare: String,
}

impl ClientFirst {
    pub fn username(&self) -> &str {
        &self.username
    }

    pub fn authzid(&self) -> Option<&str> {
        self.authzid.as_deref()
    }
}

pub fn parse_client_first(message: &[u8]) -> Result<ClientFirst, ScramError> {
    let message = std::str::from_utf8(message).map_err(|_| ScramError::Malformed("not UTF-8"))?;
    let mut parts = message.splitn(3, ',');
    let (Some(flag), Some(authzid), Some(bare)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(ScramError::Malformed("missing GS2 header"));
    };
    match flag {
        "n" | "y" => {}
        _ if flag.starts_with("p=") => return Err(ScramError::ChannelBindingNotSupported),
        _ => return Err(ScramError::Malformed("bad channel binding flag")),
    }
    let authzid = match authzid.strip_prefix("a=") {
        Some(name) => Some(unescape_saslname(name)?),
        None if authzid.is_empty() => None,
        None => return Err(ScramError::Malformed("bad authzid")),
    };
    let gs2_header = &message[..message.len() - bare.len()];

    let mut attributes = bare.split(',');
    let username = match attributes.next() {
        Some(a) if a.starts_with("m=") => return Err(ScramError::ExtensionNotSupported),
        a => unescape_saslname(value_of(a, "n=", "missing username")?)?,
    };
    let client_nonce = value_of(attributes.next(), "r=", "missing nonce")?;
    if !is_nonce(client_nonce) {
        return Err(ScramError::Malformed("bad nonce"));
    }
    // Optional extensions must be ignored (RFC 5802 section 5.1), but they
    // still have to be attributes.
    if !attributes.all(is_attribute) {
        return Err(ScramError::Malformed("bad extension"));
    }
    Ok(ClientFirst {
        gs2_header: gs2_header.to_owned(),
        authzid,
        username,
        client_nonce: client_nonce.to_owned(),
        bare: bare.to_owned(),
    })
}

/// Decodes a `saslname`: `=2C` is `,` and `=3D` is `=`; a bare `=` or NUL
/// is not allowed, and neither is an empty name.
fn unescape_saslname(name: &str) -> Result<String, ScramError> {
    if name.is_empty() || name.contains('\0') {
        return Err(ScramError::Malformed("bad name"));
    }
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(at) = rest.find('=') {
        out.push_str(&rest[..at]);
        let escape = rest.get(at..at + 3);
        match escape {
            Some("=2C") => out.push(','),
            Some("=3D") => out.push('='),
            _ => return Err(ScramError::Malformed("bad escape in name")),
        }
        rest = &rest[at + 3..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The value of `attribute`, which must be the one called `name`.
fn value_of<'a>(
    attribute: Option<&'a str>,
    name: &str,
    missing: &'static str,
) -> Result<&'a str, ScramError> {
    attribute
        .and_then(|a| a.strip_prefix(name))
        .ok_or(ScramError::Malformed(missing))
}

/// RFC 5802 `printable`: visible ASCII except `,`.
fn is_nonce(nonce: &str) -> bool {
    !nonce.is_empty()
        && nonce
            .bytes()
            .all(|b| matches!(b, 0x21..=0x2b | 0x2d..=0x7e))
}

/// `attr-val`: one letter, `=`, then anything (commas were split off).
fn is_attribute(attribute: &str) -> bool {
    let bytes = attribute.as_bytes();
    bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b'='
}

/// Answers a client-first-message. `server_nonce` is the server's part of
/// the nonce, appended to the client's; it must be printable ASCII without
/// `,`, as [`random_nonce`] is, and must be fresh each time.
pub fn server_first(
    client_first: ClientFirst,
    credentials: &ScramCredentials,
    server_nonce: &str,
) -> (String, ServerFirstSent) {
    debug_assert!(is_nonce(server_nonce), "server nonce must be printable");
    let nonce = format!("{}{server_nonce}", client_first.client_nonce);
    let message = format!(
        "r={nonce},s={},i={}",
        BASE64.encode(&credentials.salt),
        credentials.iterations
    );
    let sent = ServerFirstSent {
        auth_prefix: format!("{},{message},", client_first.bare),
        gs2_header: client_first.gs2_header,
        nonce,
        stored_key: credentials.stored_key.clone(),
        server_key: credentials.server_key.clone(),
    };
    (message, sent)
}

/// The server's state between its first message and the client's final.
pub struct ServerFirstSent {
    gs2_header: String,
    nonce: String,
    /// client-first-message-bare "," server-first-message ",".
    auth_prefix: String,
    stored_key: Vec<u8>,
    server_key: Vec<u8>,
}

impl fmt::Debug for ServerFirstSent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerFirstSent")
            .field("nonce", &self.nonce)
            .finish_non_exhaustive()
    }
}

impl ServerFirstSent {
    /// Checks the client-final-message; on success returns the
    /// server-final-message (`v=…`) that proves the server knew the keys.
    pub fn verify_client_final(self, message: &[u8]) -> Result<String, ScramError> {
        let message =
            std::str::from_utf8(message).map_err(|_| ScramError::Malformed("not UTF-8"))?;
        // The proof is always last and base64 has no commas, so the last
        // comma splits off exactly the part that is signed.
        let (without_proof, proof) = message
            .rsplit_once(',')
            .ok_or(ScramError::Malformed("missing proof"))?;
        let proof = value_of(Some(proof), "p=", "missing proof")?;
        let mut attributes = without_proof.split(',');
        let binding = value_of(attributes.next(), "c=", "missing channel binding")?;
        let nonce = value_of(attributes.next(), "r=", "missing nonce")?;
        if !attributes.all(is_attribute) {
            return Err(ScramError::Malformed("bad extension"));
        }
        let binding = BASE64
            .decode(binding)
            .map_err(|_| ScramError::Malformed("channel binding is not base64"))?;
        if binding != self.gs2_header.as_bytes() {
            return Err(ScramError::ChannelBindingMismatch);
        }
        if nonce != self.nonce {
            return Err(ScramError::NonceMismatch);
        }
        let proof = BASE64
            .decode(proof)
            .map_err(|_| ScramError::Malformed("proof is not base64"))?;
        if proof.len() != KEY_LEN {
            return Err(ScramError::Malformed("proof has the wrong length"));
        }

        let auth_message = [self.auth_prefix.as_bytes(), without_proof.as_bytes()];
        let signature = hmac(&self.stored_key, &auth_message);
        let client_key = xor(&proof, &signature);
        if !constant_time_eq(&Sha256::digest(client_key), &self.stored_key) {
            return Err(ScramError::InvalidProof);
        }
        let server_signature = hmac(&self.server_key, &auth_message);
        Ok(format!("v={}", BASE64.encode(server_signature)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ScramError::*;

    const NONCE: &str = "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
    const PROOF: &str = "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
    const SERVER_FIRST: &str =
        "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
    const SERVER_FINAL: &str = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

    fn rfc_credentials() -> ScramCredentials {
        let salt = BASE64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        ScramCredentials::derive("pencil", &salt, 4096)
    }

    /// The RFC 7677 exchange against `credentials`; `last` gets the
    /// server-first-message so that it can sign it.
    fn exchange(
        credentials: &ScramCredentials,
        last: impl Fn(&str) -> String,
    ) -> Result<String, ScramError> {
        let first = parse_client_first(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO").unwrap();
        let (message, sent) = server_first(first, credentials, "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0");
        sent.verify_client_final(last(&message).as_bytes())
    }

    fn rfc_exchange(last: String) -> Result<String, ScramError> {
        exchange(&rfc_credentials(), |_| last.clone())
    }

    /// What a client knowing `password` sends as its final message.
    fn signed_by(password: &str, salt: &[u8], server_first: &str) -> String {
        let mut salted = [0u8; KEY_LEN];
        pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), salt, 4096, &mut salted);
        let client_key = hmac(&salted, &[b"Client Key"]);
        let without_proof = format!("c=biws,r={NONCE}");
        let auth = format!("n=user,r=rOprNGfwEbeRWgbNEkqO,{server_first},{without_proof}");
        let signature = hmac(&Sha256::digest(client_key), &[auth.as_bytes()]);
        let proof = BASE64.encode(xor(&client_key, &signature));
        format!("{without_proof},p={proof}")
    }

    #[test]
    fn rfc_7677_test_vector() {
        let result = exchange(&rfc_credentials(), |server_first| {
            assert_eq!(server_first, SERVER_FIRST);
            format!("c=biws,r={NONCE},{PROOF}")
        });
        assert_eq!(result.unwrap(), SERVER_FINAL);
    }

    #[test]
    fn wrong_password_nonce_or_binding_is_refused() {
        let credentials = rfc_credentials();
        let salt = credentials.salt.clone();
        let wrong = exchange(&credentials, |first| signed_by("pencil2", &salt, first));
        assert_eq!(wrong, Err(InvalidProof));
        // The helper itself is right: the real password passes.
        assert!(exchange(&credentials, |first| signed_by("pencil", &salt, first)).is_ok());
        let nonce = rfc_exchange(format!("c=biws,r={NONCE}x,{PROOF}"));
        assert_eq!(nonce, Err(NonceMismatch));
        // "eSws" is "y,,", which is not the header the client sent.
        let binding = rfc_exchange(format!("c=eSws,r={NONCE},{PROOF}"));
        assert_eq!(binding, Err(ChannelBindingMismatch));
    }

    #[test]
    fn channel_binding_and_mandatory_extensions_are_refused() {
        let plus = parse_client_first(b"p=tls-unique,,n=user,r=abc");
        assert_eq!(plus.unwrap_err(), ChannelBindingNotSupported);
        let extension = parse_client_first(b"n,,m=ext,n=user,r=abc");
        assert_eq!(extension.unwrap_err(), ExtensionNotSupported);
        assert!(parse_client_first(b"y,,n=user,r=abc").is_ok());
    }

    #[test]
    fn names_are_unescaped_and_authzid_parsed() {
        let first = parse_client_first(b"n,a=ad=2Cmin,n=a=2Cb=3Dc,r=abc,x=ignored").unwrap();
        assert_eq!(first.username(), "a,b=c");
        assert_eq!(first.authzid(), Some("ad,min"));
        assert_eq!(parse_client_first(b"n,,n=u,r=abc").unwrap().authzid(), None);
        for name in ["a=2Db", "a=", "a=2", "a=2c"] {
            let error = parse_client_first(format!("n,,n={name},r=abc").as_bytes());
            assert_eq!(error.unwrap_err(), Malformed("bad escape in name"));
        }
    }

    #[test]
    fn malformed_client_first_is_an_error() {
        let cases: &[&[u8]] = &[
            b"",
            b"n",
            b"n,",
            b"n,,",
            b"x,,n=u,r=abc",
            b"n,b=x,n=u,r=abc",
            b"n,,n=u",
            b"n,,r=abc",
            b"n,,n=,r=abc",
            b"n,,n=u,r=",
            b"n,,n=u,r=a b",
            b"n,,n=u,r=abc,oops",
            b"n,,n=u\0,r=abc",
            b"n,,n=\xff\xfe,r=abc",
            b"n,,n=\xc3\xa9=,r=abc",
        ];
        for case in cases {
            assert!(parse_client_first(case).is_err(), "{case:?}");
        }
    }

    #[test]
    fn malformed_client_final_is_an_error() {
        let cases = [
            String::new(),
            "c=biws".into(),
            format!("c=biws,r={NONCE}"),
            format!("r={NONCE},p=AAAA"),
            "c=biws,p=AAAA".into(),
            format!("c=b!ws,r={NONCE},p=AAAA"),
            format!("c=biws,r={NONCE},bad,p=AAAA"),
            format!("c=biws,r={NONCE},p="),
        ];
        for case in cases {
            assert!(rfc_exchange(case.clone()).is_err(), "{case}");
        }
        let bad_base64 = rfc_exchange(format!("c=biws,r={NONCE},p=no*"));
        assert_eq!(bad_base64, Err(Malformed("proof is not base64")));
        let short = rfc_exchange(format!("c=biws,r={NONCE},p={}", BASE64.encode([0; 31])));
        assert_eq!(short, Err(Malformed("proof has the wrong length")));
        let (_, sent) = server_first(
            parse_client_first(b"n,,n=u,r=a").unwrap(),
            &rfc_credentials(),
            "b",
        );
        assert_eq!(
            sent.verify_client_final(b"c=biws,r=ab\xff,p=AAAA"),
            Err(Malformed("not UTF-8"))
        );
    }

    #[test]
    fn decoy_salt_is_stable_per_name_and_never_verifies() {
        let a = ScramCredentials::decoy("alice", b"secret");
        assert_eq!(a.salt, ScramCredentials::decoy("alice", b"secret").salt);
        assert_ne!(a.salt, ScramCredentials::decoy("bob", b"secret").salt);
        assert_ne!(a.salt, ScramCredentials::decoy("alice", b"other").salt);
        assert_eq!((a.salt.len(), a.iterations), (SALT_LEN, DEFAULT_ITERATIONS));
        let result = exchange(&a, |first| signed_by("pencil", &a.salt, first));
        assert_eq!(result, Err(InvalidProof));
    }

    #[test]
    fn generated_salts_and_nonces_are_fresh_and_debug_hides_keys() {
        let a = ScramCredentials::generate("pw", 4096);
        assert_ne!(a.salt, ScramCredentials::generate("pw", 4096).salt);
        assert_eq!(
            format!("{a:?}"),
            "ScramCredentials { iterations: 4096, .. }"
        );
        assert_ne!(random_nonce(), random_nonce());
        assert!(is_nonce(&random_nonce()));
    }
}
