//! The client side of SCRAM-SHA-256, written from RFC 5802 for the tests.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// A client nonce of the usual length.
pub const NONCE: &str = "fyko+d2lbbFgONRv9qkxdawL";

pub struct ScramClient {
    nonce: String,
    first_bare: String,
}

impl ScramClient {
    /// The client and its client-first-message for `user`, with `nonce`.
    pub fn first(user: &str, nonce: &str) -> (ScramClient, String) {
        let first_bare = format!("n={user},r={nonce}");
        let message = format!("n,,{first_bare}");
        let client = ScramClient {
            nonce: nonce.to_owned(),
            first_bare,
        };
        (client, message)
    }

    /// The client-final-message for `server_first`, and the server
    /// signature the server-final must carry.
    pub fn last(&self, server_first: &str, password: &str) -> (String, String) {
        let field = |key: &str| {
            server_first
                .split(',')
                .find_map(|f| f.strip_prefix(key))
                .unwrap()
                .to_owned()
        };
        let (nonce, salt, iterations) = (field("r="), field("s="), field("i="));
        assert!(nonce.starts_with(&self.nonce), "{server_first}");
        let salt = BASE64.decode(salt).unwrap();
        let mut salted = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<Sha256>(
            password.as_bytes(),
            &salt,
            iterations.parse().unwrap(),
            &mut salted,
        );
        let hmac = |key: &[u8], data: &[u8]| {
            let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
            mac.update(data);
            mac.finalize().into_bytes().to_vec()
        };
        let client_key = hmac(&salted, b"Client Key");
        let stored_key = Sha256::digest(&client_key);
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{server_first},{without_proof}", self.first_bare);
        let signature = hmac(&stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(a, b)| a ^ b)
            .collect();
        let server_key = hmac(&salted, b"Server Key");
        let server_signature = hmac(&server_key, auth_message.as_bytes());
        (
            format!("{without_proof},p={}", BASE64.encode(proof)),
            format!("v={}", BASE64.encode(server_signature)),
        )
    }
}
