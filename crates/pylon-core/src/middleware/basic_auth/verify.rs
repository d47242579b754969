//! Password verification against a stored hash. Each call costs what the hash was made to
//! cost (10–100 ms for real settings), so callers run it off the async workers.

use argon2::{Argon2, PasswordVerifier};
use pylon_config::middleware::StoredHash;
use sha2::{Digest, Sha256};
use sha_crypt::ShaCrypt;
use subtle::ConstantTimeEq;

/// Whether `password` matches `hash`; `Err` when the stored hash cannot be used (load-time
/// checks make that a bug, reported rather than treated as a wrong password silently).
pub(super) fn verify(hash: &StoredHash, password: &[u8]) -> Result<bool, String> {
    match hash {
        StoredHash::Bcrypt(h) => bcrypt::verify(password, h).map_err(|e| e.to_string()),
        StoredHash::Argon2(h) => outcome(Argon2::default().verify_password(password, h.as_str())),
        StoredHash::ShaCrypt(h) => {
            outcome(ShaCrypt::default().verify_password(password, h.as_str()))
        }
        // Digests first: equal lengths, so the comparison time says nothing about the
        // stored password's length or prefix.
        StoredHash::Plain(p) => {
            let stored = Sha256::digest(p.as_bytes());
            let given = Sha256::digest(password);
            Ok(stored.as_slice().ct_eq(given.as_slice()).into())
        }
    }
}

fn outcome(result: argon2::password_hash::Result<()>) -> Result<bool, String> {
    match result {
        Ok(()) => Ok(true),
        Err(argon2::password_hash::Error::PasswordInvalid) => Ok(false),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use argon2::{Algorithm, Params, PasswordHasher, Version};
    use pylon_config::middleware::parse_hash;
    use sha_crypt::CustomizedPasswordHasher;

    fn check(hash: &str, password: &str) -> bool {
        verify(&parse_hash(hash, true).unwrap(), password.as_bytes()).unwrap()
    }

    #[test]
    fn bcrypt_known_vectors_and_fresh_hashes() {
        // OpenBSD's test vector (password `U*U`), written by another implementation.
        let openbsd = "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW";
        assert!(check(openbsd, "U*U"));
        assert!(!check(openbsd, "U*V"));
        for version in [
            bcrypt::Version::TwoY,
            bcrypt::Version::TwoB,
            bcrypt::Version::TwoA,
        ] {
            let hash = bcrypt::hash_with_result("s3cret", 4)
                .unwrap()
                .format_for_version(version);
            assert!(check(&hash, "s3cret"), "{hash}");
            assert!(!check(&hash, "s3cret "), "{hash}");
        }
    }

    #[test]
    fn argon2_all_variants() {
        for alg in [Algorithm::Argon2id, Algorithm::Argon2i, Algorithm::Argon2d] {
            let params = Params::new(1024, 1, 1, None).unwrap();
            let hasher = Argon2::new(alg, Version::V0x13, params);
            let hash = hasher
                .hash_password_with_salt(b"s3cret", b"saltsaltsalt")
                .unwrap()
                .to_string();
            assert!(check(&hash, "s3cret"), "{hash}");
            assert!(!check(&hash, "S3cret"), "{hash}");
        }
    }

    #[test]
    fn sha_crypt_from_openssl_and_from_the_crate() {
        // `openssl passwd -5 -salt saltsalt secret`, `openssl passwd -6 -salt saltstring secret`.
        let sha256 = "$5$saltsalt$0IyaXrmV7.sGNS6tirgqHLqX/G.FBvgkYA.lpPdS5sA";
        let sha512 = "$6$saltstring$AIsRs/Ee56G/tC8MEHhvReZTfx8u3rXXMl6eYrjCG9ibix19DxoMBLogdTET5Ukw9Sf7eZTITsuk0Ry5qulYz.";
        assert!(check(sha256, "secret"));
        assert!(check(sha512, "secret"));
        assert!(!check(sha256, "secreT"));
        assert!(!check(sha512, ""));
        let params = sha_crypt::Params::new(1000).unwrap();
        let hash = ShaCrypt::default()
            .hash_password_customized(b"s3cret", b"abcdefgh", Some("5"), None, params)
            .unwrap()
            .to_string();
        assert!(hash.starts_with("$5$rounds=1000$"), "{hash}");
        assert!(check(&hash, "s3cret"));
    }

    #[test]
    fn plain_text_compares_whole_passwords() {
        assert!(check("secret", "secret"));
        assert!(!check("secret", "secre"));
        assert!(!check("secret", "secrets"));
    }
}
