//! The router: priority and tie rules, and a randomized proof that the index only prunes
//! routes that cannot match (the indexed lookup must agree with a naive linear scan over
//! thousands of generated rule sets and requests). No input may panic.
#![allow(clippy::unwrap_used)]

mod common;

use common::TestRequest;
use pylon_rules::{RequestView, Router, Rule};

/// xorshift64*: deterministic, dependency-free randomness.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

const RULE_HOSTS: &[&str] = &[
    "a.com",
    "b.com",
    "A.COM",
    "a.com.",
    "*.a.com",
    "*.b.a.com",
    "*",
    "x.a.com",
    "127.0.0.1",
    "::1",
    "*.com",
    "x.a.com.",
    "*.a.com.",
];
const RULE_PATHS: &[&str] = &[
    "/", "/a", "/ab", "/a/b", "/b", "/a%2Fb", "/a b", "/é", "/a/",
];
const HOST_REGEXES: &[&str] = &[r"^a\.com$", r"\.a\.com$", "^$", "b", "^[a-z]+$", "{x}"];
const PATH_REGEXES: &[&str] = &["^/a", "b$", "^/$", "/a/?b", r"^/\w+$"];

const REQ_HOSTS: &[&str] = &[
    "a.com",
    "A.com:80",
    "a.com.",
    "x.a.com",
    "y.b.a.com",
    "b.com",
    "com",
    "",
    "[::1]:80",
    "127.0.0.1",
    "z.x.a.com.",
    "a.comm",
    "X.A.COM.",
    ".a.com",
    "a..com",
    "::1",
];
const REQ_PATHS: &[&str] = &[
    "/", "/a", "/ab", "/abc", "/a/b", "/a%2Fb", "/a%2fb", "/%61", "/a%20b", "/b", "", "/%C3%A9",
    "/é", "/a/", "/a%", "/%2F",
];

fn gen_leaf(rng: &mut Rng) -> String {
    match rng.below(11) {
        0..=2 => format!("Host(`{}`)", rng.pick(RULE_HOSTS)),
        3 => format!("HostRegexp(`{}`)", rng.pick(HOST_REGEXES)),
        4 | 5 => format!("Path(`{}`)", rng.pick(RULE_PATHS)),
        6 | 7 => format!("PathPrefix(`{}`)", rng.pick(RULE_PATHS)),
        8 => format!("PathRegexp(`{}`)", rng.pick(PATH_REGEXES)),
        9 => match rng.below(4) {
            0 => format!("Method(`{}`)", rng.pick(&["GET", "post"])),
            1 => format!("Header(`x-a`, `{}`)", rng.pick(&["1", "2"])),
            2 => format!("Query(`q`{})", rng.pick(&["", ", `1`"])),
            _ => format!(
                "ClientIP(`{}`)",
                rng.pick(&["10.0.0.0/8", "::1", "10.0.0.1"])
            ),
        },
        _ => format!(
            "Host(`{}`) && PathPrefix(`{}`)",
            rng.pick(RULE_HOSTS),
            rng.pick(RULE_PATHS)
        ),
    }
}

fn gen_expr(rng: &mut Rng, depth: usize) -> String {
    if depth == 0 || rng.chance(40) {
        return gen_leaf(rng);
    }
    match rng.below(4) {
        0 => format!("!{}", paren(gen_expr(rng, depth - 1))),
        1 => paren(gen_expr(rng, depth - 1)),
        k => {
            let op = if k == 2 { " && " } else { " || " };
            let n = 2 + rng.below(2);
            (0..n)
                .map(|_| gen_expr(rng, depth - 1))
                .collect::<Vec<_>>()
                .join(op)
        }
    }
}

fn paren(s: String) -> String {
    format!("({s})")
}

fn gen_request(rng: &mut Rng) -> TestRequest {
    let mut r = TestRequest {
        method: rng.pick(&["GET", "POST", "get"]).to_string(),
        host: rng.pick(REQ_HOSTS).to_string(),
        path: rng.pick(REQ_PATHS).to_string(),
        query: rng.pick(&["", "q", "q=1", "q=2&q=1", "r=1"]).to_string(),
        ..Default::default()
    };
    if rng.chance(50) {
        r.headers
            .push(("X-A".into(), rng.pick(&["1", "2"]).as_bytes().to_vec()));
    }
    if rng.chance(50) {
        r.client_ip = Some(rng.pick(&["10.1.1.1", "::1", "192.0.2.1"]).parse().unwrap());
    }
    r
}

/// The reference: highest priority first, then declaration order, first match wins.
fn naive<'a, R: RequestView>(routes: &'a [(Rule, i64, usize)], req: &R) -> Option<&'a usize> {
    let mut order: Vec<usize> = (0..routes.len()).collect();
    order.sort_by_key(|&i| (std::cmp::Reverse(routes[i].1), i));
    order
        .into_iter()
        .find(|&i| routes[i].0.matches(req))
        .map(|i| &routes[i].2)
}

#[test]
fn index_agrees_with_a_linear_scan() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut checked = 0;
    let mut matched = 0;
    for _ in 0..1500 {
        let n = 1 + rng.below(40);
        let mut routes = Vec::with_capacity(n);
        for i in 0..n {
            let text = gen_expr(&mut rng, 3);
            let rule = Rule::parse(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
            let priority = if rng.chance(50) {
                rule.default_priority()
            } else {
                rng.below(4) as i64
            };
            routes.push((rule, priority, i));
        }
        let router = Router::new(routes.clone());
        assert_eq!(router.len(), n);
        for _ in 0..40 {
            let req = gen_request(&mut rng);
            let want = naive(&routes, &req);
            let got = router.find(&req);
            if got != want {
                let listing: Vec<String> = routes
                    .iter()
                    .map(|(r, p, i)| format!("  #{i} prio {p}: {}", r.source()))
                    .collect();
                panic!(
                    "index disagrees with the linear scan for {req:?}: got {got:?}, want {want:?}\nroutes:\n{}",
                    listing.join("\n")
                );
            }
            checked += 1;
            matched += usize::from(want.is_some());
        }
    }
    println!("{checked} lookups compared, {matched} of them matched a route");
    // The generator must exercise both outcomes.
    assert!(matched > checked / 10 && checked - matched > checked / 50);
}

#[test]
fn ties_go_to_the_route_declared_first() {
    let rule = |s: &str| Rule::parse(s).unwrap();
    let router = Router::new(vec![
        (rule("PathPrefix(`/`)"), 5, "first"),
        (rule("PathPrefix(`/`)"), 5, "second"),
        (rule("PathPrefix(`/`)"), 1, "low"),
    ]);
    assert_eq!(router.find(&TestRequest::get("h", "/x")), Some(&"first"));

    let router = Router::new(vec![
        (rule("PathPrefix(`/`)"), 1, "low"),
        (rule("Host(`h`)"), 7, "host"),
        (rule("PathPrefix(`/`)"), 7, "later"),
    ]);
    assert_eq!(router.find(&TestRequest::get("h", "/")), Some(&"host"));
    assert_eq!(router.find(&TestRequest::get("other", "/")), Some(&"later"));

    let empty: Router<()> = Router::new(Vec::new());
    assert!(empty.is_empty());
    assert_eq!(empty.find(&TestRequest::get("h", "/")), None);
}

#[test]
fn default_priority_prefers_longer_rules() {
    let rule = |s: &str| {
        let r = Rule::parse(s).unwrap();
        let p = r.default_priority();
        (r, p, s.to_string())
    };
    let router = Router::new(vec![
        rule("PathPrefix(`/`)"),
        rule("PathPrefix(`/api`)"),
        rule("Host(`a.com`) && PathPrefix(`/api`)"),
        rule("Host(`*.a.com`) && Method(`GET`)"),
    ]);
    let find = |h: &str, p: &str| router.find(&TestRequest::get(h, p)).cloned();
    assert_eq!(
        find("a.com", "/api/x").as_deref(),
        Some("Host(`a.com`) && PathPrefix(`/api`)")
    );
    assert_eq!(
        find("b.com", "/api/x").as_deref(),
        Some("PathPrefix(`/api`)")
    );
    assert_eq!(
        find("x.a.com", "/api").as_deref(),
        Some("Host(`*.a.com`) && Method(`GET`)")
    );
    assert_eq!(
        find("x.a.com", "/").as_deref(),
        Some("Host(`*.a.com`) && Method(`GET`)")
    );
    assert_eq!(find("b.com", "/").as_deref(), Some("PathPrefix(`/`)"));
}

#[test]
fn no_input_panics() {
    let mut rng = Rng(42);
    let pieces: &[&str] = &[
        "Host",
        "Path",
        "PathPrefix",
        "HostRegexp",
        "Query",
        "ClientIP",
        "Header",
        "(",
        ")",
        "`",
        "\"",
        ",",
        "!",
        "&&",
        "||",
        "&",
        "|",
        " ",
        "`a`",
        "`/`",
        "\\",
        "\\x",
        "\\u12",
        "é",
        "🦭",
        "{",
        "}",
        "[",
        "]",
        "*",
        "%",
        "1",
        "::",
        "/",
        "\n",
        "'",
    ];
    let mut parsed = Vec::new();
    for _ in 0..20_000 {
        let n = rng.below(12);
        let text: String = (0..n).map(|_| rng.pick(pieces)).collect();
        if let Ok(rule) = Rule::parse(&text) {
            parsed.push(rule);
        }
        // Any byte soup as well.
        let bytes: Vec<u8> = (0..rng.below(16)).map(|_| rng.next() as u8).collect();
        let _ = Rule::parse(&String::from_utf8_lossy(&bytes));
    }
    for _ in 0..200 {
        parsed.push(Rule::parse(&gen_expr(&mut rng, 4)).unwrap());
    }
    let odd: &[&str] = &[
        "", "%", "%%", "%zz", "/%", "/%2", "[", "]", "[::1", "::]:", ":", "@", "é:é", "🦭", "a.",
        ".", "..", "/a%00b", "q=%", "q=;", "&&&", "=", "+", "\u{0}",
    ];
    let routes: Vec<(Rule, i64, usize)> = parsed
        .into_iter()
        .enumerate()
        .map(|(i, r)| (r, (i % 7) as i64, i))
        .collect();
    let router = Router::new(routes.clone());
    for _ in 0..5_000 {
        let mut r = gen_request(&mut rng);
        let mix = |rng: &mut Rng| -> String { (0..rng.below(5)).map(|_| rng.pick(odd)).collect() };
        r.host = mix(&mut rng);
        r.path = mix(&mut rng);
        r.query = mix(&mut rng);
        r.method = mix(&mut rng);
        r.headers.push(("X-A".into(), vec![0xff, 0xfe, b'1']));
        assert_eq!(router.find(&r), naive(&routes, &r));
    }
}
