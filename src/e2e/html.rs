//! `l3map e2e --report FILE`: the report as one self-contained HTML page,
//! for a go-live review or a CI artefact. No script, no external asset:
//! inline CSS and inline SVG charts, readable offline and printable.
//!
//! Accessible as a document: one `h1`, sections under `h2`, tables with
//! captions and header cells, text at ≥ 4.5:1 contrast, results said in
//! words (never by colour alone), and each chart an `img` with a `<title>`
//! and `<desc>`, every point with its own `<title>`, and its numbers in the
//! table after it.
//!
//! Every string from a run (ticket subjects, API answers, error details,
//! test names, paths) is escaped with `html-escape` (`&`, `<`, `>`); run
//! data is only ever put in text, never in an attribute (attributes hold
//! our own ids and numbers).

use super::report::{Load, Report, Slice};
use html_escape::encode_text as text;
use std::fmt::Write as _;

const STYLE: &str = "
body{font:16px/1.5 system-ui,-apple-system,'Segoe UI',sans-serif;color:#1f2328;background:#fff;margin:0}
main{max-width:72rem;margin:0 auto;padding:1.5rem}
h1{font-size:1.6rem;margin:0 0 .25rem}h2{font-size:1.3rem;margin-top:2rem;border-bottom:1px solid #d0d7de}
h3{font-size:1.1rem}
table{border-collapse:collapse;margin:.5rem 0 1rem;width:100%}
caption{text-align:left;font-weight:600;padding:.25rem 0}
th,td{border:1px solid #d0d7de;padding:.3rem .5rem;text-align:left;vertical-align:top}
th{background:#f6f8fa}td.n{text-align:right;font-variant-numeric:tabular-nums}
.pass{color:#116329;font-weight:600}.fail{color:#a40e26;font-weight:600}
.meta{color:#424a53}code{font-family:ui-monospace,monospace;font-size:.9em}
figure{margin:1rem 0}figcaption{color:#424a53;font-size:.9rem}
svg{max-width:100%;height:auto;background:#fff;border:1px solid #d0d7de}
svg text{font:12px system-ui,sans-serif;fill:#1f2328}
.legend span{margin-right:1rem;white-space:nowrap}
";

/// Chart series: name, colour, dash pattern (so no series is told by
/// colour alone).
const LATENCY: [(&str, &str, &str); 3] = [
    ("p50", "#0550ae", ""),
    ("p95", "#7d4e00", "6 3"),
    ("p99", "#a40e26", "2 3"),
];

/// The page.
pub fn render(r: &Report) -> String {
    let mut o = String::with_capacity(32 * 1024);
    let verdict = if r.passed { "PASSED" } else { "FAILED" };
    let _ = write!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>l3map e2e {verdict}: run {}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n",
        text(&r.run_id)
    );
    let _ = write!(
        o,
        "<h1>l3map e2e: <span class=\"{}\">{verdict}</span></h1>\n\
         <p class=\"meta\">Against {}, run <code>{}</code>, mappings <code>{}</code> \
         (revision <code>{}</code>), in {:.1} s.</p>\n",
        class(r.passed),
        text(&r.target),
        text(&r.run_id),
        text(&r.mappings),
        text(&r.revision),
        r.seconds
    );
    steps(&mut o, r);
    scenarios(&mut o, r);
    coverage(&mut o, r);
    if let Some(l) = &r.load {
        load(&mut o, l);
    }
    cleanup(&mut o, r);
    o.push_str("</main>\n</body>\n</html>\n");
    o
}

fn class(ok: bool) -> &'static str {
    if ok {
        "pass"
    } else {
        "fail"
    }
}

fn verdict(ok: bool) -> String {
    format!(
        "<span class=\"{}\">{}</span>",
        class(ok),
        if ok { "passed" } else { "FAILED" }
    )
}

fn table_head(o: &mut String, caption: &str, cols: &[&str]) {
    let _ = write!(o, "<table>\n<caption>{caption}</caption>\n<thead><tr>");
    for c in cols {
        let _ = write!(o, "<th scope=\"col\">{c}</th>");
    }
    o.push_str("</tr></thead>\n<tbody>\n");
}

fn steps(o: &mut String, r: &Report) {
    o.push_str("<h2 id=\"steps\">Steps</h2>\n");
    table_head(
        o,
        "The go-live sequence, in order",
        &["Step", "Result", "Detail"],
    );
    for s in &r.steps {
        let _ = writeln!(
            o,
            "<tr><th scope=\"row\">{}</th><td>{}</td><td>{}</td></tr>",
            text(&s.name),
            verdict(s.passed),
            text(&s.detail)
        );
    }
    o.push_str("</tbody>\n</table>\n");
}

fn scenarios(o: &mut String, r: &Report) {
    o.push_str("<h2 id=\"scenarios\">Scenarios</h2>\n");
    if r.scenarios.is_empty() {
        o.push_str("<p>No test block ran live.</p>\n");
    } else {
        table_head(
            o,
            "Test blocks run live, each write read back from the API",
            &[
                "Test",
                "Result",
                "Where",
                "Ticket",
                "Turn",
                "Actions",
                "Failed expectations",
            ],
        );
        for sc in &r.scenarios {
            let _ = write!(
                o,
                "<tr><th scope=\"row\">{}</th><td>{}</td><td><code>{}</code></td><td class=\"n\">{}{}</td><td class=\"n\">{} ms</td><td><ul>",
                text(&sc.test),
                verdict(sc.passed),
                text(&sc.at),
                sc.ticket,
                sc.case
                    .as_deref()
                    .map(|c| format!(" (Case {})", text(c)))
                    .unwrap_or_default(),
                sc.turn_ms
            );
            for a in &sc.actions {
                let _ = write!(
                    o,
                    "<li>{} {} <code>{}</code>: {}, {}{}</li>",
                    text(&a.connection),
                    text(&a.kind),
                    text(&a.record),
                    if a.visible {
                        "read back"
                    } else {
                        "<strong>NOT SEEN</strong>"
                    },
                    text(&a.state),
                    a.error
                        .as_deref()
                        .map(|e| format!(": {}", text(e)))
                        .unwrap_or_default()
                );
            }
            o.push_str("</ul></td><td>");
            for f in &sc.failures {
                let _ = write!(o, "<p>{}</p>", text(f));
            }
            o.push_str("</td></tr>\n");
        }
        o.push_str("</tbody>\n</table>\n");
    }
    if !r.skipped.is_empty() {
        table_head(
            o,
            "Not runnable live (<code>l3map test</code> runs them offline)",
            &["Test", "Why"],
        );
        for s in &r.skipped {
            let _ = writeln!(
                o,
                "<tr><th scope=\"row\">{}</th><td>{}</td></tr>",
                text(&s.test),
                text(&s.why)
            );
        }
        o.push_str("</tbody>\n</table>\n");
    }
}

fn coverage(o: &mut String, r: &Report) {
    o.push_str("<h2 id=\"coverage\">Coverage</h2>\n");
    table_head(
        o,
        "Action types the mappings write, and whether a scenario wrote and read one back",
        &["Connection", "Action type", "Verified live"],
    );
    for c in &r.coverage {
        let _ = writeln!(
            o,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            text(&c.connection),
            text(&c.kind),
            if c.verified {
                verdict(true)
            } else {
                "<span class=\"fail\">no test block exercises it live: add one</span>".into()
            }
        );
    }
    o.push_str("</tbody>\n</table>\n");
}

fn load(o: &mut String, l: &Load) {
    o.push_str("<h2 id=\"load\">Load</h2>\n");
    let _ = writeln!(o, "<p>{}.</p>", text(&l.headline()));
    table_head(o, "What the load measured", &["Measure", "Value"]);
    for (k, v) in l.measures() {
        let _ = writeln!(
            o,
            "<tr><th scope=\"row\">{k}</th><td>{}</td></tr>",
            text(&v)
        );
    }
    o.push_str("</tbody>\n</table>\n");
    if l.timeline.is_empty() {
        o.push_str("<p>No time series was recorded.</p>\n");
        return;
    }
    latency_chart(o, &l.timeline);
    budget_chart(o, &l.timeline);
    slice_table(o, &l.timeline);
}

/// Plot area of a chart, in SVG units.
struct Frame {
    width: f64,
    height: f64,
    left: f64,
    bottom: f64,
    x_max: f64,
    y_max: f64,
}

impl Frame {
    fn new(slices: &[Slice], y_max: f64) -> Frame {
        Frame {
            width: 720.0,
            height: 260.0,
            left: 56.0,
            bottom: 34.0,
            x_max: slices.last().map_or(1.0, |s| s.to_s).max(1e-9),
            y_max: (y_max * 1.1).max(1.0),
        }
    }
    fn x(&self, secs: f64) -> f64 {
        self.left + secs / self.x_max * (self.width - self.left - 12.0)
    }
    fn y(&self, v: f64) -> f64 {
        let top = 12.0;
        self.height - self.bottom - v / self.y_max * (self.height - self.bottom - top)
    }
    /// `<svg>` with its title and description, and the axes.
    fn open(&self, o: &mut String, id: &str, title: &str, desc: &str, y_label: &str) {
        let (w, h, base) = (self.width, self.height, self.height - self.bottom);
        let _ = write!(
            o,
            "<svg id=\"{id}\" role=\"img\" aria-labelledby=\"{id}-title {id}-desc\" viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\" xmlns=\"http://www.w3.org/2000/svg\">\
             <title id=\"{id}-title\">{}</title><desc id=\"{id}-desc\">{}</desc>\
             <line x1=\"{l}\" y1=\"{base}\" x2=\"{r}\" y2=\"{base}\" stroke=\"#424a53\"/>\
             <line x1=\"{l}\" y1=\"12\" x2=\"{l}\" y2=\"{base}\" stroke=\"#424a53\"/>",
            text(title),
            text(desc),
            l = self.left,
            r = w - 12.0,
        );
        for i in 0..=4 {
            let v = self.y_max * f64::from(i) / 4.0;
            let _ = write!(
                o,
                "<text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{:.0}</text>",
                self.left - 6.0,
                self.y(v) + 4.0,
                v
            );
        }
        for i in 0..=4 {
            let s = self.x_max * f64::from(i) / 4.0;
            let _ = write!(
                o,
                "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{:.0} s</text>",
                self.x(s),
                base + 16.0,
                s
            );
        }
        let _ = write!(o, "<text x=\"4\" y=\"10\">{}</text>", text(y_label));
    }
}

fn mid(s: &Slice) -> f64 {
    (s.from_s + s.to_s) / 2.0
}

fn latency_chart(o: &mut String, slices: &[Slice]) {
    let max = slices
        .iter()
        .filter_map(|s| s.turn_ms_p99)
        .max()
        .unwrap_or(0) as f64;
    let f = Frame::new(slices, max);
    o.push_str("<h3 id=\"latency\">Turn latency over time</h3>\n<figure>\n");
    f.open(
        o,
        "latency-chart",
        "Turn latency over time",
        &format!(
            "p50, p95 and p99 of the agent turns sent in each of {} slices of the load, in milliseconds; the numbers are in the table below.",
            slices.len()
        ),
        "ms",
    );
    for (n, (name, colour, dash)) in LATENCY.iter().enumerate() {
        let value = |s: &Slice| [s.turn_ms_p50, s.turn_ms_p95, s.turn_ms_p99][n];
        let points: Vec<String> = slices
            .iter()
            .filter_map(|s| value(s).map(|v| format!("{:.1},{:.1}", f.x(mid(s)), f.y(v as f64))))
            .collect();
        let _ = write!(
            o,
            "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" stroke-dasharray=\"{dash}\" points=\"{}\"/>",
            points.join(" ")
        );
        for (i, s) in slices.iter().enumerate() {
            if let Some(v) = value(s) {
                let _ = write!(
                    o,
                    "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{colour}\" data-series=\"{name}\" data-slice=\"{i}\" data-value=\"{v}\"><title>{name} {v} ms, {:.1}–{:.1} s</title></circle>",
                    f.x(mid(s)),
                    f.y(v as f64),
                    s.from_s,
                    s.to_s
                );
            }
        }
    }
    o.push_str("</svg>\n<figcaption class=\"legend\">");
    for (name, colour, dash) in LATENCY {
        let _ = write!(
            o,
            "<span><svg width=\"24\" height=\"8\" aria-hidden=\"true\"><line x1=\"0\" y1=\"4\" x2=\"24\" y2=\"4\" stroke=\"{colour}\" stroke-width=\"2\" stroke-dasharray=\"{dash}\"/></svg> {name}</span>"
        );
    }
    o.push_str("per slice of the load, by when the turn was sent.</figcaption>\n</figure>\n");
}

fn budget_chart(o: &mut String, slices: &[Slice]) {
    let max = slices
        .iter()
        .map(|s| (s.requests as f64).max(s.limit))
        .fold(0.0, f64::max);
    let f = Frame::new(slices, max);
    let limited: u64 = slices.iter().map(|s| s.rate_limited).sum();
    o.push_str("<h3 id=\"budget\">Budget over time</h3>\n<figure>\n");
    f.open(
        o,
        "budget-chart",
        "Zendesk token budget over time",
        &format!(
            "Requests of the runtime's Zendesk token in each slice (bars) against the token's limit over the slice (line); {limited} HTTP 429 answers, marked with a red triangle where they fell. The numbers are in the table below."
        ),
        "requests",
    );
    let base = f.height - f.bottom;
    let mut limit_line = Vec::new();
    for (i, s) in slices.iter().enumerate() {
        let (x0, x1) = (f.x(s.from_s), f.x(s.to_s));
        let y = f.y(s.requests as f64);
        let _ = write!(
            o,
            "<rect x=\"{:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"#8c959f\" data-series=\"requests\" data-slice=\"{i}\" data-value=\"{}\"><title>{} requests of {} allowed ({} left), {:.1}–{:.1} s</title></rect>",
            x0 + 1.0,
            (x1 - x0 - 2.0).max(1.0),
            base - y,
            s.requests,
            s.requests,
            s.limit,
            s.remaining,
            s.from_s,
            s.to_s
        );
        limit_line.push(format!(
            "{x0:.1},{:.1} {x1:.1},{:.1}",
            f.y(s.limit),
            f.y(s.limit)
        ));
        let _ = write!(
            o,
            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"2.5\" fill=\"#1f2328\" data-series=\"limit\" data-slice=\"{i}\" data-value=\"{}\"><title>limit {} requests, {:.1}–{:.1} s</title></circle>",
            f.x(mid(s)),
            f.y(s.limit),
            s.limit,
            s.limit,
            s.from_s,
            s.to_s
        );
        if s.rate_limited > 0 {
            let (x, y) = (f.x(mid(s)), f.y(s.requests as f64) - 6.0);
            let _ = write!(
                o,
                "<path d=\"M{x:.1},{:.1} l-6,-10 h12 z\" fill=\"#a40e26\" data-series=\"rate_limited\" data-slice=\"{i}\" data-value=\"{}\"><title>{} × 429, {:.1}–{:.1} s</title></path>",
                y,
                s.rate_limited,
                s.rate_limited,
                s.from_s,
                s.to_s
            );
        }
    }
    let _ = write!(
        o,
        "<polyline fill=\"none\" stroke=\"#1f2328\" stroke-width=\"1.5\" stroke-dasharray=\"5 3\" points=\"{}\"/>",
        limit_line.join(" ")
    );
    o.push_str(
        "</svg>\n<figcaption class=\"legend\"><span>grey bars: requests made</span>\
         <span>dashed line: the token's limit over the slice</span>\
         <span>red triangles: HTTP 429 answers</span></figcaption>\n</figure>\n",
    );
}

fn slice_table(o: &mut String, slices: &[Slice]) {
    table_head(
        o,
        "Per slice: the numbers of both charts",
        &[
            "Slice", "From (s)", "To (s)", "Turns", "p50 (ms)", "p95 (ms)", "p99 (ms)", "Requests",
            "Limit", "Left", "429s",
        ],
    );
    let ms = |v: Option<u64>| v.map_or("–".to_string(), |v| v.to_string());
    for (i, s) in slices.iter().enumerate() {
        let _ = writeln!(
            o,
            "<tr><th scope=\"row\">{i}</th><td class=\"n\">{:.1}</td><td class=\"n\">{:.1}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            s.from_s,
            s.to_s,
            s.turns,
            ms(s.turn_ms_p50),
            ms(s.turn_ms_p95),
            ms(s.turn_ms_p99),
            s.requests,
            s.limit,
            s.remaining,
            s.rate_limited
        );
    }
    o.push_str("</tbody>\n</table>\n");
}

fn cleanup(o: &mut String, r: &Report) {
    let c = &r.cleanup;
    o.push_str("<h2 id=\"cleanup\">Cleanup</h2>\n");
    if c.kept {
        o.push_str("<p>Kept everything the run created (<code>--keep</code>).</p>\n");
        return;
    }
    let _ = writeln!(
        o,
        "<p>{} tickets and {} Salesforce records deleted.</p>",
        c.tickets_deleted, c.records_deleted
    );
    if !c.failed.is_empty() {
        o.push_str("<p class=\"fail\">Could not delete:</p>\n<ul>\n");
        for f in &c.failed {
            let _ = writeln!(o, "<li>{}</li>", text(f));
        }
        o.push_str("</ul>\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::e2e::report::{Cleanup, Coverage, Scenario, Skipped, Step, Verified};

    const HOSTILE: &str = "<script>alert(1)</script>\"'&<img src=x onerror=alert(2)>";

    fn report() -> Report {
        let slice = |i: u32, p: Option<u64>, requests: u64, rate_limited: u64| Slice {
            from_s: f64::from(i) * 2.0,
            to_s: f64::from(i + 1) * 2.0,
            turns: u64::from(p.is_some()),
            turn_ms_p50: p,
            turn_ms_p95: p.map(|p| p + 5),
            turn_ms_p99: p.map(|p| p + 9),
            requests,
            limit: 40.0,
            remaining: 40.0 - requests as f64,
            rate_limited,
        };
        Report {
            target: "emulator".into(),
            run_id: HOSTILE.into(),
            mappings: HOSTILE.into(),
            revision: "abc".into(),
            passed: false,
            steps: vec![Step {
                name: "webhook".into(),
                passed: false,
                detail: HOSTILE.into(),
            }],
            scenarios: vec![Scenario {
                test: HOSTILE.into(),
                at: "a.l3map:1".into(),
                ticket: 7,
                case: Some(HOSTILE.into()),
                turn_ms: 300,
                actions: vec![Verified {
                    connection: "desk".into(),
                    record: HOSTILE.into(),
                    kind: "comment".into(),
                    rule: "r".into(),
                    visible: false,
                    state: "dead".into(),
                    error: Some(HOSTILE.into()),
                }],
                failures: vec![HOSTILE.into()],
                passed: false,
            }],
            skipped: vec![Skipped {
                test: HOSTILE.into(),
                why: HOSTILE.into(),
            }],
            coverage: vec![Coverage {
                connection: HOSTILE.into(),
                kind: "comment".into(),
                verified: false,
            }],
            load: Some(Load {
                requests_per_minute: 250,
                made_per_minute: 190.0,
                limit_per_minute: 200,
                time_scale: 6,
                seconds: 6.0,
                turns: 2,
                turns_refused: 0,
                actions: 4,
                applied: 4,
                lost: 0,
                duplicated: 0,
                api_calls: 50,
                api_errors: 0,
                error_rate: 0.0,
                rate_limited: 3,
                retries: 3,
                turn_ms_p50: 301,
                turn_ms_p95: 306,
                turn_ms_p99: 310,
                drain_seconds: 2.0,
                api_latency_ms: 300,
                zendesk_requests: 50,
                zendesk_actions: 40,
                requests_per_action: 1.25,
                max_per_window: Some(190),
                windows_over: Some(0),
                timeline: vec![
                    slice(0, Some(301), 30, 0),
                    slice(1, Some(297), 45, 3),
                    slice(2, None, 12, 0),
                ],
            }),
            cleanup: Cleanup {
                kept: false,
                tickets_deleted: 3,
                records_deleted: 1,
                failed: vec![HOSTILE.into()],
            },
            seconds: 12.5,
        }
    }

    #[test]
    fn run_data_is_escaped_wherever_it_lands() {
        let page = render(&report());
        assert!(!page.contains("<script"), "{page}");
        assert!(!page.contains("<img"), "{page}");
        assert!(
            page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{page}"
        );
        // Once per place the string was put: all of them escaped.
        assert_eq!(page.matches("&lt;script&gt;").count(), 13, "{page}");
    }

    #[test]
    fn the_page_is_one_document_with_charts_that_carry_their_numbers() {
        let page = render(&report());
        assert!(page.starts_with("<!DOCTYPE html>\n<html lang=\"en\">"));
        assert_eq!(page.matches("<html").count(), 1);
        assert_eq!(page.matches("</html>").count(), 1);
        assert_eq!(page.matches("<h1>").count(), 1);
        assert!(!page.contains("<script") && !page.contains("src=\"http"));
        for id in ["latency-chart", "budget-chart"] {
            assert!(page.contains(&format!("<title id=\"{id}-title\">")), "{id}");
        }
        for point in [
            r#"data-series="p50" data-slice="0" data-value="301""#,
            r#"data-series="p99" data-slice="1" data-value="306""#,
            r#"data-series="requests" data-slice="1" data-value="45""#,
            r#"data-series="limit" data-slice="2" data-value="40""#,
            r#"data-series="rate_limited" data-slice="1" data-value="3""#,
        ] {
            assert!(page.contains(point), "{point}");
        }
        // The drain's slice has no turns: no latency point, a dash in the table.
        assert!(!page.contains(r#"data-series="p50" data-slice="2""#));
        assert!(page.contains("<th scope=\"row\">2</th><td class=\"n\">4.0</td><td class=\"n\">6.0</td><td class=\"n\">0</td><td class=\"n\">–</td>"));
    }
}
