//! Argon2 password hashing and checking. Checks are slow on purpose, so
//! they run on the blocking pool, never on a connection's task, and only a
//! few at a time: a burst of attempts queues instead of taking every core
//! and gigabytes of memory (each check needs its Argon2 memory cost).

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

/// An Argon2id PHC string for `password` with the default parameters and a
/// fresh salt.
pub fn hash_password(password: &str) -> String {
    hash_with(&Argon2::default(), password)
}

pub(crate) fn hash_with(argon2: &Argon2<'_>, password: &str) -> String {
    let salt = SaltString::generate(&mut rand_core::OsRng);
    argon2
        .hash_password(password.as_bytes(), &salt)
        .expect("Argon2 accepts any password with valid parameters")
        .to_string()
}

/// The hasher a PHC string was made with, so a decoy can cost the same.
fn argon2_like(hash: &str) -> Option<Argon2<'static>> {
    let parsed = PasswordHash::new(hash).ok()?;
    let algorithm = Algorithm::try_from(parsed.algorithm).ok()?;
    let params = Params::try_from(&parsed).ok()?;
    Some(Argon2::new(algorithm, Version::V0x13, params))
}

pub(crate) fn verify(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

pub struct PasswordChecker {
    permits: Semaphore,
    /// Checked when there is no real hash (an unknown name), so that
    /// probing names takes as long as guessing passwords.
    decoy: String,
}

impl PasswordChecker {
    /// `reference` is a configured hash whose parameters the decoy copies.
    /// Computes one hash: call it off the async runtime.
    pub fn new(reference: Option<&str>) -> PasswordChecker {
        let argon2 = reference.and_then(argon2_like).unwrap_or_default();
        let parallel = std::thread::available_parallelism().map_or(2, usize::from);
        PasswordChecker {
            permits: Semaphore::new(parallel),
            decoy: hash_with(&argon2, "a decoy that no password matches"),
        }
    }

    /// Whether `password` matches `hash`; `None` checks the decoy and is
    /// always false.
    pub async fn verify(&self, hash: Option<String>, password: String) -> bool {
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| self.decoy.clone());
        let Ok(_permit) = self.permits.acquire().await else {
            return false;
        };
        let matched = tokio::task::spawn_blocking(move || verify(&hash, &password))
            .await
            .unwrap_or(false);
        known && matched
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn verifies_right_and_wrong_passwords_and_never_the_decoy() {
        let hash = hash_password("hunter2");
        let checker = PasswordChecker::new(Some(&hash));
        assert!(checker.verify(Some(hash.clone()), "hunter2".into()).await);
        assert!(!checker.verify(Some(hash), "hunter3".into()).await);
        assert!(
            !checker
                .verify(None, "a decoy that no password matches".into())
                .await
        );
    }

    #[test]
    fn the_decoy_costs_what_the_configured_hash_costs() {
        let cheap = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(8, 1, 1, None).unwrap(),
        );
        let reference = hash_with(&cheap, "x");
        let checker = PasswordChecker::new(Some(&reference));
        assert!(
            checker.decoy.starts_with("$argon2id$v=19$m=8,t=1,p=1$"),
            "{}",
            checker.decoy
        );
    }
}
