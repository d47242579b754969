//! A real `redis-server` (Debian's package) on a loopback ephemeral port with its own temp
//! dir, stopped by pid on drop.
