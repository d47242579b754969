//! The `static` middleware through the binary: what the origin received and what the
//! client received.

use std::path::Path;

use crate::harness::tempdir::TempDir;
use crate::harness::{Origin, Pylon};

/// A site: `root/` with files, next to `secret.txt` that must never be served.
struct Site {
    dir: TempDir,
}

const SECRET: &str = "TOP-SECRET-OUTSIDE-ROOT";

impl Site {
    fn new(tag: &str) -> Site {
        let dir = TempDir::new(tag);
        std::fs::create_dir_all(dir.path().join("root/docs")).unwrap();
        std::fs::create_dir_all(dir.path().join("root/empty")).unwrap();
        dir.write("secret.txt", SECRET);
        let site = Site { dir };
        site.write("index.html", "<h1>home</h1>");
        site.write("docs/index.html", "<h1>docs</h1>");
        site.write("style.css", "body{}");
        site.write("app.js", "let a=1;");
        site.write("data.json", "{\"a\":1}");
        site.write("blob.unknownext", "???");
        site.write("digits.txt", "0123456789");
        std::fs::write(site.root().join("logo.png"), b"\x89PNG\r\n\x1a\nfake").unwrap();
        site
    }

    fn root(&self) -> std::path::PathBuf {
        self.dir.path().join("root")
    }

    fn write(&self, name: &str, contents: &str) {
        std::fs::write(self.root().join(name), contents).unwrap();
    }
}

/// One route serving `root` with extra `static` settings (a YAML flow-map tail), and an
/// upstream when given.
fn config(root: &Path, settings: &str, upstream: Option<&str>) -> String {
    let (upstreams, route_upstream) = match upstream {
        Some(addr) => (
            format!("upstreams:\n  app:\n    servers: [\"{addr}\"]\n"),
            "    upstream: app\n".to_string(),
        ),
        None => (String::new(), String::new()),
    };
    format!(
        "listeners:\n  - name: web\n    address: \"@listen0@\"\n{upstreams}routes:\n  - name: files\n    rule: \"PathPrefix(`/`)\"\n{route_upstream}    middlewares:\n      - static: {{ root: \"{}\"{settings} }}\n",
        root.display()
    )
}

#[test]
fn static_serves_index_files_and_content_types() {
    let site = Site::new("static-types");
    let pylon = Pylon::start(&config(
        &site.root(),
        ", cache_control: \"public, max-age=60\"",
        None,
    ));
    let c = pylon.client();
    let home = c.get("/");
    assert_eq!(home.status, 200);
    assert_eq!(home.text(), "<h1>home</h1>");
    assert_eq!(
        home.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(home.header("content-length"), Some("13"));
    assert_eq!(home.header("accept-ranges"), Some("bytes"));
    assert_eq!(home.header("cache-control"), Some("public, max-age=60"));
    assert!(home.header("etag").is_some_and(|e| e.starts_with('"')));
    assert!(home
        .header("last-modified")
        .is_some_and(|d| d.ends_with(" GMT")));
    assert_eq!(c.get("/docs/").text(), "<h1>docs</h1>");
    assert_eq!(c.get("/index.html").text(), "<h1>home</h1>");
    for (path, ty) in [
        ("/style.css", "text/css; charset=utf-8"),
        ("/app.js", "text/javascript; charset=utf-8"),
        ("/data.json", "application/json"),
        ("/logo.png", "image/png"),
        ("/blob.unknownext", "application/octet-stream"),
    ] {
        let r = c.get(path);
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.header("content-type"), Some(ty), "{path}");
    }
    assert_eq!(c.get("/logo.png").body, b"\x89PNG\r\n\x1a\nfake");
    let missing = c.get("/nope.txt");
    assert_eq!(missing.status, 404);
    assert!(!missing.text().contains(SECRET));
}

#[test]
fn static_etag_and_last_modified_answer_304() {
    let site = Site::new("static-304");
    let pylon = Pylon::start(&config(&site.root(), "", None));
    let c = pylon.client();
    let first = c.get("/digits.txt");
    let etag = first.header("etag").unwrap().to_string();
    let date = first.header("last-modified").unwrap().to_string();
    let get = |headers: &[(&str, &str)]| {
        let mut all = vec![("Host", "localhost")];
        all.extend_from_slice(headers);
        c.request("GET", "/digits.txt", &all)
    };
    let same = get(&[("If-None-Match", &etag)]);
    assert_eq!(same.status, 304);
    assert!(same.body.is_empty());
    assert_eq!(same.header("etag"), Some(etag.as_str()));
    // A list, and the weak form, match too.
    let weak = format!("\"zzz\", W/{etag}");
    assert_eq!(get(&[("If-None-Match", &weak)]).status, 304);
    let changed = get(&[("If-None-Match", "\"other\"")]);
    assert_eq!(changed.status, 200);
    assert_eq!(changed.text(), "0123456789");
    assert_eq!(get(&[("If-Modified-Since", &date)]).status, 304);
    let old = get(&[("If-Modified-Since", "Mon, 01 Jan 2001 00:00:00 GMT")]);
    assert_eq!(old.status, 200);
    assert_eq!(old.text(), "0123456789");
    // If-None-Match decides when both are sent.
    let both = get(&[("If-None-Match", "\"other\""), ("If-Modified-Since", &date)]);
    assert_eq!(both.status, 200);
}

#[test]
fn static_range_requests() {
    let site = Site::new("static-range");
    let pylon = Pylon::start(&config(&site.root(), "", None));
    let c = pylon.client();
    let etag = c.get("/digits.txt").header("etag").unwrap().to_string();
    let ranged = |range: &str, extra: &[(&str, &str)]| {
        let mut all = vec![("Host", "localhost"), ("Range", range)];
        all.extend_from_slice(extra);
        c.request("GET", "/digits.txt", &all)
    };
    for (range, body, content_range) in [
        ("bytes=0-3", "0123", "bytes 0-3/10"),
        ("bytes=7-", "789", "bytes 7-9/10"),
        ("bytes=-2", "89", "bytes 8-9/10"),
        ("bytes=5-100", "56789", "bytes 5-9/10"),
    ] {
        let r = ranged(range, &[]);
        assert_eq!(r.status, 206, "{range}");
        assert_eq!(r.text(), body, "{range}");
        assert_eq!(r.header("content-range"), Some(content_range), "{range}");
        assert_eq!(
            r.header("content-length"),
            Some(body.len().to_string().as_str())
        );
    }
    let unsatisfiable = ranged("bytes=10-", &[]);
    assert_eq!(unsatisfiable.status, 416);
    assert_eq!(unsatisfiable.header("content-range"), Some("bytes */10"));
    assert!(unsatisfiable.body.is_empty());
    let several = ranged("bytes=0-1,4-5", &[]);
    assert_eq!(several.status, 200);
    assert_eq!(several.text(), "0123456789");
    let current = ranged("bytes=0-1", &[("If-Range", &etag)]);
    assert_eq!(current.status, 206);
    assert_eq!(current.text(), "01");
    let stale = ranged("bytes=0-1", &[("If-Range", "\"stale\"")]);
    assert_eq!(stale.status, 200);
    assert_eq!(stale.text(), "0123456789");
}

#[test]
fn static_head_and_other_methods() {
    let site = Site::new("static-methods");
    let pylon = Pylon::start(&config(&site.root(), "", None));
    let c = pylon.client();
    let head = c.request("HEAD", "/digits.txt", &[("Host", "localhost")]);
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length"), Some("10"));
    assert_eq!(
        head.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert!(head.body.is_empty());
    let post = c.request_with_body("POST", "/digits.txt", &[("Host", "localhost")], b"x");
    assert_eq!(post.status, 405);
    assert_eq!(post.header("allow"), Some("GET, HEAD"));
    // In the shared error format, like every answer Pylon generates.
    assert_eq!(post.json()["error"], "method not allowed");
    assert!(!post.text().contains("0123"));
}

#[test]
fn static_directories_redirect_and_list_only_when_asked() {
    let site = Site::new("static-dirs");
    site.write("empty/<b>&x.txt", "x");
    let off = Pylon::start(&config(&site.root(), "", None));
    let c = off.client();
    let moved = c.get("/docs?x=1");
    assert_eq!(moved.status, 301);
    assert_eq!(moved.header("location"), Some("/docs/?x=1"));
    // Leading slashes collapse: never a protocol-relative `//docs/`.
    assert_eq!(c.get("//docs").header("location"), Some("/docs/"));
    let unlisted = c.get("/empty/");
    assert_eq!(unlisted.status, 404);
    assert!(!unlisted.text().contains("&x.txt"));
    drop(off);

    let on = Pylon::start(&config(&site.root(), ", directory_listing: true", None));
    let listing = on.client().get("/empty/");
    assert_eq!(listing.status, 200);
    assert_eq!(
        listing.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    let html = listing.text();
    assert!(html.contains("&lt;b&gt;&amp;x.txt"), "{html}");
    assert!(!html.contains("<b>"), "{html}");
    // A directory with an index still serves the index.
    assert_eq!(on.client().get("/docs/").text(), "<h1>docs</h1>");
}

#[test]
fn static_try_upstream_falls_back_to_the_origin() {
    let site = Site::new("static-try");
    let origin = Origin::start("app");
    let pylon = Pylon::start(&config(
        &site.root(),
        ", try_upstream: true",
        Some(&origin.address()),
    ));
    let c = pylon.client();
    let file = c.get("/digits.txt");
    assert_eq!(file.text(), "0123456789");
    assert_eq!(origin.hits(), 0);
    let fallback = c.get("/api/users?id=1");
    assert_eq!(fallback.status, 200);
    assert_eq!(fallback.served_by(), "app");
    assert_eq!(fallback.json()["path"], "/api/users");
    let post = c.request_with_body("POST", "/digits.txt", &[("Host", "localhost")], b"hi");
    assert_eq!(post.json()["body"], "hi");
    assert_eq!(origin.hits(), 2);
}

#[test]
fn static_without_try_upstream_answers_404_and_never_reaches_the_origin() {
    let site = Site::new("static-notry");
    let origin = Origin::start("app");
    let pylon = Pylon::start(&config(&site.root(), "", Some(&origin.address())));
    let r = pylon.client().get("/api/users");
    assert_eq!(r.status, 404);
    assert_eq!(origin.hits(), 0);
}

#[test]
fn static_strip_prefix() {
    let site = Site::new("static-prefix");
    let pylon = Pylon::start(&config(&site.root(), ", strip_prefix: /assets", None));
    let c = pylon.client();
    assert_eq!(c.get("/assets/digits.txt").text(), "0123456789");
    assert_eq!(c.get("/assets/").text(), "<h1>home</h1>");
    assert_eq!(c.get("/assets").header("location"), Some("/assets/"));
    assert_eq!(c.get("/digits.txt").status, 404);
    assert_eq!(c.get("/assetsdigits.txt").status, 404);
}

#[test]
fn static_path_traversal_never_leaves_the_root() {
    let site = Site::new("static-traversal");
    // Links inside the root that point outside it: a file and a directory.
    std::os::unix::fs::symlink(
        site.dir.path().join("secret.txt"),
        site.root().join("link.txt"),
    )
    .unwrap();
    std::os::unix::fs::symlink(site.dir.path(), site.root().join("up")).unwrap();
    let pylon = Pylon::start(&config(&site.root(), ", directory_listing: true", None));
    let c = pylon.client();
    for target in [
        "/../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E/secret.txt",
        "/docs/%2E%2E/%2e%2e/secret.txt",
        "/..%2fsecret.txt",
        "/docs%2f..%2f..%2fsecret.txt",
        "/..\\secret.txt",
        "/docs/..%5c..%5csecret.txt",
        "/secret.txt%00.html",
        "/link.txt",
        "/up/secret.txt",
        "/up/",
    ] {
        let r = c.request("GET", target, &[("Host", "localhost")]);
        assert!(
            r.status == 400 || r.status == 404,
            "{target}: status {}",
            r.status
        );
        assert!(!r.text().contains(SECRET), "{target}: {}", r.text());
    }
    // A double-encoded dot is a literal name, not a way up.
    assert_eq!(c.get("/%252e%252e/secret.txt").status, 404);
    // Links that stay inside the root are fine.
    std::os::unix::fs::symlink(site.root().join("digits.txt"), site.root().join("d.txt")).unwrap();
    assert_eq!(c.get("/d.txt").text(), "0123456789");
}

#[test]
fn static_large_files_stream_intact() {
    let site = Site::new("static-large");
    // 3 MiB + a bit of varied bytes: a misplaced chunk would show.
    let data: Vec<u8> = (0..3 * 1024 * 1024 + 123u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(site.root().join("big.bin"), &data).unwrap();
    let pylon = Pylon::start(&config(&site.root(), "", None));
    let c = pylon.client();
    let r = c.get("/big.bin");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-length"),
        Some(data.len().to_string().as_str())
    );
    assert!(r.body == data, "the body differs from the file");
    let part = c.request(
        "GET",
        "/big.bin",
        &[("Host", "localhost"), ("Range", "bytes=1000000-2500000")],
    );
    assert_eq!(part.status, 206);
    assert!(part.body == data[1_000_000..=2_500_000]);
}
