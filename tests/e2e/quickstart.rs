//! The bundled quickstart runs as the README says, with the README's curl lines.

use crate::harness::{Client, Pylon};

#[test]
fn quickstart_example_serves_the_readme_curl_lines() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/quickstart.yaml"
    ))
    .unwrap();
    // Move the two listeners to free ports through the variables the example documents.
    let pylon = Pylon::builder(&text)
        .file_name("quickstart.yaml")
        .port_env("PYLON_LISTEN")
        .port_env("PYLON_BACKEND")
        .start();
    let web = pylon.listeners[0];
    let c = Client::new(web);

    let hello = c.get("/hello");
    assert_eq!(hello.status, 200);
    assert_eq!(hello.text(), "Hello from Pylon!\n");

    let users = c.get("/api/users");
    assert_eq!(users.status, 200);
    assert_eq!(users.header("x-served-by"), Some("backend"));
    assert_eq!(users.json()[1]["name"], "bob");
    // The route's middlewares: a fresh request id, and `Vary: Origin` from cors.
    assert_eq!(users.header("x-request-id").map(str::len), Some(32));
    assert_eq!(users.header("vary"), Some("Origin"));

    let status = c.get_host("status.localhost", "/");
    assert_eq!(status.json()["status"], "ok");

    let missing = c.get("/nowhere");
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["error"], "no route");
}
