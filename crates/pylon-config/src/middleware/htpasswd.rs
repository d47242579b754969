//! htpasswd lines (`user:hash`) and the password hashes `basic_auth` accepts, read the same
//! way by validation and by the runtime, so a config that loads is a config that verifies.
//!
//! Hash formats are checked with the parsers of the crates that verify them (bcrypt's
//! `HashParts`, argon2's PHC parser and parameter checks); SHA-crypt has no parse-only API,
//! so its Modular Crypt Format is checked here field by field, as `sha-crypt` reads it.
//! Messages never quote a hash or a password: a line that was meant as a hash may be a
//! password pasted by mistake.

use std::fmt;
use std::str::FromStr;

/// A password hash from an htpasswd line, checked at load.
#[derive(Clone, PartialEq, Eq)]
pub enum StoredHash {
    /// `$2a$`, `$2b$` or `$2y$`: bcrypt.
    Bcrypt(String),
    /// `$argon2id$`, `$argon2i$` or `$argon2d$`: a PHC string.
    Argon2(String),
    /// `$5$` (SHA-256-crypt) or `$6$` (SHA-512-crypt).
    ShaCrypt(String),
    /// The password itself, only with `allow_plaintext: true`.
    Plain(String),
}

/// Hashes are not secret the way passwords are, but they can be cracked offline: keep
/// them out of debug output and logs.
impl fmt::Debug for StoredHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StoredHash::Bcrypt(_) => "Bcrypt(…)",
            StoredHash::Argon2(_) => "Argon2(…)",
            StoredHash::ShaCrypt(_) => "ShaCrypt(…)",
            StoredHash::Plain(_) => "Plain(…)",
        })
    }
}

/// One user of an htpasswd list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HtpasswdEntry {
    pub user: String,
    pub hash: StoredHash,
}

/// The accepted formats, for error messages.
const SUPPORTED: &str =
    "use bcrypt (`htpasswd -nB USER`: `$2y$`), argon2 (`$argon2id$`) or SHA-crypt (`$5$`, `$6$`)";

/// How `basic_auth` lets a plain-text password in; not said where there is no such option.
const PLAINTEXT_HINT: &str = ", or set `allow_plaintext: true` (tests only)";

/// Reads a `user:hash` line where plain-text passwords are never an option (the admin API's
/// users): the hash formats and messages of [`parse_entry`], without its plain-text hint.
pub fn parse_hashed_entry(line: &str) -> Result<HtpasswdEntry, String> {
    parse_entry(line, false).map_err(|e| e.replace(PLAINTEXT_HINT, ""))
}

/// Reads `user:hash` (split at the first `:`; surrounding whitespace ignored).
pub fn parse_entry(line: &str, allow_plaintext: bool) -> Result<HtpasswdEntry, String> {
    let line = line.trim();
    let Some((user, hash)) = line.split_once(':') else {
        return Err("expected `user:hash` (an htpasswd line), found no `:`".into());
    };
    if user.is_empty() {
        return Err("the user name before `:` is empty".into());
    }
    if user.chars().any(char::is_control) {
        return Err("the user name contains control characters".into());
    }
    let hash = parse_hash(hash, allow_plaintext).map_err(|e| format!("user `{user}`: {e}"))?;
    Ok(HtpasswdEntry {
        user: user.to_string(),
        hash,
    })
}

/// Reads an htpasswd file's text: `(line number, entry or why not)` for each line that is
/// not blank or a `#` comment.
pub fn parse_file(
    text: &str,
    allow_plaintext: bool,
) -> Vec<(usize, Result<HtpasswdEntry, String>)> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(|(i, l)| (i + 1, parse_entry(l, allow_plaintext)))
        .collect()
}

/// Recognises and checks one hash.
pub fn parse_hash(text: &str, allow_plaintext: bool) -> Result<StoredHash, String> {
    if text.is_empty() {
        return Err("the hash after `:` is empty".into());
    }
    let owned = text.to_string();
    if let Some(rest) = text.strip_prefix('$') {
        let id = rest.split('$').next().unwrap_or("");
        return match id {
            "2a" | "2b" | "2y" => check_bcrypt(text).map(|()| StoredHash::Bcrypt(owned)),
            "argon2id" | "argon2i" | "argon2d" => {
                check_argon2(text).map(|()| StoredHash::Argon2(owned))
            }
            "5" | "6" => check_sha_crypt(text).map(|()| StoredHash::ShaCrypt(owned)),
            "2x" => Err(format!(
                "`$2x$` is the pre-2011 bcrypt variant with a known flaw: hash the password again; {SUPPORTED}"
            )),
            "apr1" | "1" => Err(format!("MD5-crypt (`$apr1$`, `$1$`) is too weak; {SUPPORTED}")),
            _ => Err(format!("unknown hash format; {SUPPORTED}")),
        };
    }
    if text.starts_with("{SHA}") || text.starts_with("{SSHA}") {
        return Err(format!(
            "unsalted SHA-1 (`{{SHA}}`) is too weak; {SUPPORTED}"
        ));
    }
    if allow_plaintext {
        Ok(StoredHash::Plain(owned))
    } else {
        Err(format!(
            "not a password hash (a plain-text password?); {SUPPORTED}{PLAINTEXT_HINT}"
        ))
    }
}

/// bcrypt: the crate's own parser, plus the cost range it verifies with (4 to 31).
fn check_bcrypt(text: &str) -> Result<(), String> {
    let parts = bcrypt::HashParts::from_str(text).map_err(|e| {
        format!("not a valid bcrypt hash ({e}); expected `$2y$COST$` and 53 characters")
    })?;
    let cost = parts.get_cost();
    if !(4..=31).contains(&cost) {
        return Err(format!("bcrypt cost must be from 4 to 31, found {cost}"));
    }
    Ok(())
}

/// argon2: the PHC string parser and the crate's parameter checks, the ones verification
/// runs.
fn check_argon2(text: &str) -> Result<(), String> {
    let bad = |why: String| format!("not a valid argon2 hash: {why}");
    let hash = argon2::PasswordHash::new(text).map_err(|e| bad(e.to_string()))?;
    argon2::Algorithm::try_from(hash.algorithm.as_str()).map_err(|e| bad(e.to_string()))?;
    if let Some(v) = hash.version {
        argon2::Version::try_from(v).map_err(|e| bad(e.to_string()))?;
    }
    argon2::Params::try_from(&hash).map_err(|e| bad(e.to_string()))?;
    if hash.salt.is_none() || hash.hash.is_none() {
        return Err(bad("the salt or the hash is missing".into()));
    }
    Ok(())
}

/// SHA-crypt's characters (`./0-9A-Za-z`), which its hash field is written in.
fn is_crypt_b64(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'.' || b == b'/'
}

/// SHA-crypt rounds: glibc clamps values outside this range, `sha-crypt` refuses them, so
/// they are refused here rather than failing every login.
const SHA_CRYPT_ROUNDS: std::ops::RangeInclusive<u32> = 1_000..=999_999_999;

/// `$5$[rounds=N$]salt$hash`: a salt of 1 to 16 characters, a hash of 43 (`$5$`) or 86
/// (`$6$`) characters.
fn check_sha_crypt(text: &str) -> Result<(), String> {
    let fields: Vec<&str> = text.split('$').skip(1).collect();
    let (id, rest) = fields.split_first().ok_or("empty SHA-crypt hash")?;
    let hash_len = if *id == "5" { 43 } else { 86 };
    let rest = match rest.split_first() {
        Some((params, after)) if params.starts_with("rounds=") => {
            params["rounds=".len()..]
                .parse::<u32>()
                .ok()
                .filter(|r| SHA_CRYPT_ROUNDS.contains(r))
                .ok_or("SHA-crypt `rounds=` must be a number from 1000 to 999999999")?;
            after
        }
        _ => rest,
    };
    let [salt, hash] = rest else {
        return Err(format!(
            "not a valid SHA-crypt hash: expected `${id}$[rounds=N$]SALT$HASH`"
        ));
    };
    // `sha-crypt` reads the salt as a Modular Crypt Format field, which allows these.
    let salt_ok = (1..=16).contains(&salt.len())
        && salt
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"./+=,-".contains(&b));
    if !salt_ok {
        return Err(
            "not a valid SHA-crypt hash: the salt must be 1 to 16 characters of `./0-9A-Za-z`"
                .into(),
        );
    }
    if hash.len() != hash_len || !hash.bytes().all(is_crypt_b64) {
        return Err(format!(
            "not a valid SHA-crypt hash: `${id}$` needs a {hash_len}-character hash of `./0-9A-Za-z`"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Password `secret`: bcrypt and argon2 made with the crates, SHA-crypt with
    /// `openssl passwd -5/-6` (another implementation); a glibc-style vector with rounds.
    const BCRYPT: &str = "$2y$05$KBCwKxOzLha2MUDgW0PjXeGy8zDyKFegpVV4y0qPBUgij10WNyKY6";
    const ARGON2: &str =
        "$argon2id$v=19$m=1024,t=1,p=1$c2FsdHNhbHRzYWx0$GMv1V/a9uBNqF+93SqBH3JLZiqfe1V1xP9SfOSAqqRE";
    const SHA256: &str = "$5$saltsalt$0IyaXrmV7.sGNS6tirgqHLqX/G.FBvgkYA.lpPdS5sA";
    const SHA512: &str = "$6$saltstring$AIsRs/Ee56G/tC8MEHhvReZTfx8u3rXXMl6eYrjCG9ibix19DxoMBLogdTET5Ukw9Sf7eZTITsuk0Ry5qulYz.";
    const SHA512_ROUNDS: &str = "$6$rounds=100000$exn6tVc2j/MZD8uG$BI1Xh8qQSK9J4m14uwy7abn.ctj/TIAzlaVCto0MQrOFIeTXsc1iwzH16XEWo/a7c7Y9eVJvufVzYAs4EsPOy0";

    #[test]
    fn supported_hashes_are_recognised() {
        assert!(matches!(
            parse_hash(BCRYPT, false),
            Ok(StoredHash::Bcrypt(_))
        ));
        assert!(matches!(
            parse_hash(&BCRYPT.replace("$2y$", "$2b$"), false),
            Ok(StoredHash::Bcrypt(_))
        ));
        assert!(matches!(
            parse_hash(ARGON2, false),
            Ok(StoredHash::Argon2(_))
        ));
        assert!(matches!(
            parse_hash(SHA256, false),
            Ok(StoredHash::ShaCrypt(_))
        ));
        assert!(matches!(
            parse_hash(SHA512, false),
            Ok(StoredHash::ShaCrypt(_))
        ));
        assert!(matches!(
            parse_hash(SHA512_ROUNDS, false),
            Ok(StoredHash::ShaCrypt(_))
        ));
        assert!(matches!(
            parse_hash("secret", true),
            Ok(StoredHash::Plain(_))
        ));
    }

    #[test]
    fn bad_hashes_are_refused_without_quoting_them() {
        let cases = [
            ("secret", "not a password hash"),
            ("$apr1$abc$def", "MD5-crypt"),
            ("{SHA}qUqP5cyxm6YcTAhz05Hph5gvu9M=", "unsalted SHA-1"),
            ("$2x$05$KBCwKxOzLha2MUDgW0PjXeGy8zDyKFegpVV4y0qPBUgij10WNyKY6", "`$2x$`"),
            ("$2y$05$short", "not a valid bcrypt hash"),
            ("$2y$03$KBCwKxOzLha2MUDgW0PjXeGy8zDyKFegpVV4y0qPBUgij10WNyKY6", "cost must be from 4 to 31"),
            ("$argon2id$v=19$m=4096,t=1,p=1$c2FsdHNhbHQ", "salt or the hash is missing"),
            ("$argon2id$v=19$m=1,t=1,p=1$c2FsdHNhbHQ$rZ9nTUFO4NmYoD7Jl/kv5pP6K9nR0jyPUV+T4HDt7yQ", "not a valid argon2 hash"),
            ("$argon2x$v=19$m=4096,t=1,p=1$c2FsdHNhbHQ$rZ9nTUFO4NmYoD7Jl/kv5pP6K9nR0jyPUV+T4HDt7yQ", "unknown hash format"),
            ("$5$rounds=10$salt$Un/5jzAHMgOGZ5.mWJpuVolil07guHPvOW8mGRcvxa5", "rounds="),
            ("$5$saltsalt$tooshort", "43-character hash"),
            ("$6$bad salt$AIsRs/Ee56G/tC8MEHhvReZTfx8u3rXXMl6eYrjCG9ibix19DxoMBLogdTET5Ukw9Sf7eZTITsuk0Ry5qulYz.", "the salt must be"),
            ("$7$x$y", "unknown hash format"),
            ("", "empty"),
        ];
        for (hash, want) in cases {
            let e = parse_hash(hash, false).unwrap_err();
            assert!(e.contains(want), "{hash}: {e}");
            if hash.len() > 6 {
                assert!(!e.contains(&hash[6..]), "the message quotes the hash: {e}");
            }
        }
        // allow_plaintext accepts plain text, never an unknown hash format.
        assert!(parse_hash("$apr1$abc$def", true).is_err());
    }

    #[test]
    fn lines_and_files() {
        let e = parse_entry(&format!("  ann:{BCRYPT}  "), false).unwrap();
        assert_eq!(e.user, "ann");
        assert_eq!(e.hash, StoredHash::Bcrypt(BCRYPT.into()));
        assert!(parse_entry("ann", false).unwrap_err().contains("no `:`"));
        assert!(parse_entry(":x", true).unwrap_err().contains("empty"));
        assert!(parse_entry("ann:secret", false)
            .unwrap_err()
            .starts_with("user `ann`: not a password hash"));
        let file = format!("# users\n\nann:{BCRYPT}\nbob\ncid:{SHA512}\n");
        let parsed = parse_file(&file, false);
        assert_eq!(parsed.len(), 3);
        assert_eq!(parsed[0].0, 3);
        assert!(parsed[0].1.is_ok());
        assert_eq!(parsed[1].0, 4);
        assert!(parsed[1].1.is_err());
        assert!(parsed[2].1.is_ok());
        assert_eq!(
            format!("{:?}", parsed[0].1),
            "Ok(HtpasswdEntry { user: \"ann\", hash: Bcrypt(…) })"
        );
    }
}
