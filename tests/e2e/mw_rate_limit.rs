//! `rate_limit` through the binary: token-bucket rate limiting by client, header, consumer or route; local or on Redis.
