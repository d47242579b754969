//! The Prometheus text exposition format (version 0.0.4): `# HELP` and `# TYPE` once per
//! family, then its samples, label values escaped (`\\`, `\"`, `\n`).

use std::fmt::Write;

use super::histogram::Histogram;

/// The content type of the exposition.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A metric family's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// The text being written. Families must be written whole, one after the other.
#[derive(Debug, Default)]
pub struct Exposition {
    out: String,
}

impl Exposition {
    pub fn new() -> Exposition {
        Exposition::default()
    }

    /// Starts a family: its `# HELP` and `# TYPE` lines.
    pub fn family(&mut self, name: &str, kind: Kind, help: &str) {
        let _ = writeln!(
            self.out,
            "# HELP {name} {}\n# TYPE {name} {}",
            escape_help(help),
            kind.as_str()
        );
    }

    /// One sample line.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.out.push_str(name);
        self.labels(labels, None);
        self.out.push(' ');
        push_value(&mut self.out, value);
        self.out.push('\n');
    }

    /// The `_bucket`, `_sum` and `_count` lines of one histogram series.
    pub fn histogram(&mut self, name: &str, labels: &[(&str, &str)], h: &Histogram) {
        let (buckets, sum) = h.snapshot();
        let mut count = 0;
        for (le, cumulative) in buckets {
            let mut bound = String::new();
            push_value(&mut bound, le);
            self.out.push_str(name);
            self.out.push_str("_bucket");
            self.labels(labels, Some(&bound));
            let _ = writeln!(self.out, " {cumulative}");
            count = cumulative;
        }
        self.out.push_str(name);
        self.out.push_str("_sum");
        self.labels(labels, None);
        self.out.push(' ');
        push_value(&mut self.out, sum);
        self.out.push('\n');
        self.out.push_str(name);
        self.out.push_str("_count");
        self.labels(labels, None);
        let _ = writeln!(self.out, " {count}");
    }

    fn labels(&mut self, labels: &[(&str, &str)], le: Option<&str>) {
        if labels.is_empty() && le.is_none() {
            return;
        }
        self.out.push('{');
        let all = labels.iter().copied().chain(le.map(|v| ("le", v)));
        for (i, (name, value)) in all.enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            self.out.push_str(name);
            self.out.push_str("=\"");
            escape_label(&mut self.out, value);
            self.out.push('"');
        }
        self.out.push('}');
    }

    pub fn finish(self) -> String {
        self.out
    }
}

/// A label value as the format wants it: backslash, double quote and newline escaped.
fn escape_label(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Help text escapes backslash and newline only.
fn escape_help(help: &str) -> String {
    help.replace('\\', "\\\\").replace('\n', "\\n")
}

/// A sample value: integers without a fraction, infinities as `+Inf`/`-Inf`.
fn push_value(out: &mut String, value: f64) {
    if value == f64::INFINITY {
        out.push_str("+Inf");
    } else if value == f64::NEG_INFINITY {
        out.push_str("-Inf");
    } else if value.is_nan() {
        out.push_str("NaN");
    } else if value.fract() == 0.0 && value.abs() < 1e15 {
        let _ = write!(out, "{}", value as i64);
    } else {
        let _ = write!(out, "{value}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::histogram::Bounds;

    #[test]
    fn label_values_are_escaped() {
        let mut e = Exposition::new();
        e.family("pylon_x_total", Kind::Counter, "Help with \\ and\nnewline.");
        e.sample("pylon_x_total", &[("route", "a\"b\\c\nd")], 3.0);
        assert_eq!(
            e.finish(),
            "# HELP pylon_x_total Help with \\\\ and\\nnewline.\n# TYPE pylon_x_total counter\n\
             pylon_x_total{route=\"a\\\"b\\\\c\\nd\"} 3\n"
        );
    }

    #[test]
    fn histograms_write_buckets_sum_and_count() {
        let h = Histogram::new(Bounds::seconds(&[0.5]));
        h.observe_duration(std::time::Duration::from_millis(250));
        let mut e = Exposition::new();
        e.histogram("d_seconds", &[("r", "a")], &h);
        assert_eq!(
            e.finish(),
            "d_seconds_bucket{r=\"a\",le=\"0.5\"} 1\nd_seconds_bucket{r=\"a\",le=\"+Inf\"} 1\n\
             d_seconds_sum{r=\"a\"} 0.25\nd_seconds_count{r=\"a\"} 1\n"
        );
    }

    #[test]
    fn values_print_like_prometheus_clients() {
        let mut s = String::new();
        push_value(&mut s, 1.0);
        s.push(' ');
        push_value(&mut s, 0.005);
        s.push(' ');
        push_value(&mut s, f64::INFINITY);
        assert_eq!(s, "1 0.005 +Inf");
    }
}
