//! `basic_auth` through the binary: hTTP Basic authentication against htpasswd users (bcrypt, argon2, SHA-crypt).
