//! The HTML directory listing (only with `directory_listing: true`).

use std::fmt::Write;
use std::path::Path;

use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};

/// Bytes escaped in a link's path segment: everything that would end or change it.
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'/')
    .add(b'\\')
    .add(b'\'')
    .add(b'&');

use crate::errors::escape_html as html_escape;

/// The listing page of `dir`, titled with the request path. Names are sorted;
/// directories end with `/`.
pub async fn render(dir: &Path, request_path: &str) -> std::io::Result<String> {
    let mut entries = Vec::new();
    let mut reader = tokio::fs::read_dir(dir).await?;
    while let Some(entry) = reader.next_entry().await? {
        let name = entry.file_name().to_string_lossy().into_owned();
        let is_dir = entry.file_type().await.is_ok_and(|t| t.is_dir());
        entries.push((name, is_dir));
    }
    entries.sort();
    Ok(page(request_path, &entries))
}

fn page(request_path: &str, entries: &[(String, bool)]) -> String {
    let title = html_escape(&format!("Index of {request_path}"));
    let mut html = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title></head>\n<body><h1>{title}</h1>\n<ul>\n<li><a href=\"../\">../</a></li>\n"
    );
    for (name, is_dir) in entries {
        let slash = if *is_dir { "/" } else { "" };
        let href = utf8_percent_encode(name, SEGMENT);
        // `./` keeps a name like `a:b` from reading as a scheme.
        let _ = writeln!(
            html,
            "<li><a href=\"./{href}{slash}\">{}{slash}</a></li>",
            html_escape(name)
        );
    }
    html.push_str("</ul>\n</body></html>\n");
    html
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn names_are_escaped_in_text_and_links() {
        let html = page(
            "/d/",
            &[
                ("<script>x</script>.txt".into(), false),
                ("sub dir".into(), true),
            ],
        );
        assert!(!html.contains("<script>"), "{html}");
        assert!(
            html.contains("&lt;script&gt;x&lt;/script&gt;.txt"),
            "{html}"
        );
        assert!(
            html.contains("href=\"./%3Cscript%3Ex%3C%2Fscript%3E.txt\""),
            "{html}"
        );
        assert!(
            html.contains("href=\"./sub%20dir/\">sub dir/</a>"),
            "{html}"
        );
    }
}
