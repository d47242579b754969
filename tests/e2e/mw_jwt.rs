//! `jwt` through the binary: jSON Web Tokens: signature, time and audience checks, claims forwarded as headers.
