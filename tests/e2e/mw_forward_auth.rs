//! `forward_auth` through the binary: ask an external service whether the request may pass (Traefik's ForwardAuth).
