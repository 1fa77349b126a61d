use super::scrape::parse_sample;
use super::*;

fn has_line(text: &str, line: &str) -> bool {
    text.lines().any(|l| l == line)
}

#[track_caller]
fn assert_line(m: &Metrics, line: &str) {
    let text = m.render();
    assert!(has_line(&text, line), "no line {line:?} in:\n{text}");
}

/// Calls every recording method once.
fn exercise(m: &Metrics) {
    m.fanout_change("applied");
    m.fanout_tickets(3, 3);
    m.link_lookup("desk.organization <-> crm.Account", "hit");
    m.fanout_refused("desk.ticket <-> crm.Case");
    m.batch("completed");
    m.batch_tickets("applied", 3);
    m.events_in("webhook");
    m.event_duplicate("webhook");
    m.event_rejected("webhook", "replayed");
    m.action("set_field", "failed");
    m.api_call("desk", "ok");
    m.api_error("desk", "transient");
    m.rate_limited("desk");
    m.retry("desk");
    m.set_outbox(1, 1.0);
    m.set_dead_letters(1);
    m.reload("ok");
    m.set_revision_info("r1");
    m.turn_latency(0.1);
    m.action_latency(0.1);
    let deleted = crate::runtime::store::Deleted::default();
    deleted
        .events
        .store(3, std::sync::atomic::Ordering::Relaxed);
    m.set_store(false, 2, &deleted);
}

#[test]
fn a_fresh_registry_has_every_known_series_at_zero() {
    let m = Metrics::new();
    m.connection("desk");
    let text = m.render();
    assert!(text.ends_with("\n# EOF\n"), "{text}");
    for line in [
        "l3map_outbox_depth 0",
        "l3map_turn_latency_seconds_count 0",
        r#"l3map_events_total{source="agent"} 0"#,
        r#"l3map_events_duplicate_total{source="salesforce_poll"} 0"#,
        r#"l3map_events_rejected_total{source="webhook",reason="bad_signature"} 0"#,
        r#"l3map_actions_total{kind="set_status",result="refused"} 0"#,
        r#"l3map_actions_total{kind="normalize_sku",result="requeued"} 0"#,
        r#"l3map_retention_deleted_total{what="done_actions"} 0"#,
        r#"l3map_reloads_total{result="failed"} 0"#,
        r#"l3map_api_calls_total{connection="desk",outcome="error"} 0"#,
        r#"l3map_api_errors_total{connection="desk",kind="budget"} 0"#,
        r#"l3map_api_429_total{connection="desk"} 0"#,
        r#"l3map_retries_total{connection="desk"} 0"#,
        r#"l3map_http_request_duration_seconds_count{route="/v1/turns",method="POST",status="5xx"} 0"#,
    ] {
        assert!(has_line(&text, line), "no {line:?} in:\n{text}");
    }
    let build = text
        .lines()
        .find(|l| l.starts_with("l3map_build_info{"))
        .unwrap_or_else(|| panic!("no build info in:\n{text}"));
    assert!(
        build.starts_with(&format!(
            "l3map_build_info{{version=\"{}\",revision=\"",
            env!("CARGO_PKG_VERSION")
        )) && build.ends_with("\"} 1"),
        "{build}"
    );
    assert!(has_line(&text, "# TYPE l3map_build info"), "{text}");
}

#[test]
fn http_labels_are_route_templates_from_a_fixed_set() {
    let m = Metrics::new();
    m.http_request(Some("/v1/context/{ticket}"), "GET", 200, 0.02);
    m.http_request(Some("/v1/turns"), "POST", 422, 0.01);
    // An unknown path, an odd method: one bounded series each.
    m.http_request(None, "PROPFIND", 404, 0.001);
    m.http_request(Some("/wp-admin/x.php"), "GET", 404, 0.001);
    let count = |labels: &str| {
        let line = format!("l3map_http_request_duration_seconds_count{{{labels}}} ");
        m.render()
            .lines()
            .find_map(|l| l.strip_prefix(&line).map(str::to_owned))
            .unwrap_or_else(|| panic!("no {line}"))
    };
    assert_eq!(
        count(r#"route="/v1/context/{ticket}",method="GET",status="2xx""#),
        "1"
    );
    assert_eq!(
        count(r#"route="/v1/turns",method="POST",status="4xx""#),
        "1"
    );
    assert_eq!(count(r#"route="other",method="other",status="4xx""#), "1");
    assert_eq!(count(r#"route="other",method="GET",status="4xx""#), "1");
    assert!(!m.render().contains("wp-admin"));
}

#[test]
fn every_metric_has_help_and_type_and_the_text_parses() {
    let m = Metrics::new();
    exercise(&m);
    let text = m.render();
    assert!(text.ends_with("\n# EOF\n"), "{text}");
    assert_eq!(text.matches("# EOF").count(), 1);
    for (family, kind) in [
        ("l3map_events", "counter"),
        ("l3map_events_duplicate", "counter"),
        ("l3map_events_rejected", "counter"),
        ("l3map_actions", "counter"),
        ("l3map_api_calls", "counter"),
        ("l3map_api_errors", "counter"),
        ("l3map_api_429", "counter"),
        ("l3map_retries", "counter"),
        ("l3map_outbox_depth", "gauge"),
        ("l3map_outbox_oldest_age_seconds", "gauge"),
        ("l3map_outbox_dead_letters", "gauge"),
        ("l3map_reloads", "counter"),
        ("l3map_reload_compiles", "counter"),
        ("l3map_mappings_revision_info", "gauge"),
        ("l3map_turn_latency_seconds", "histogram"),
        ("l3map_action_latency_seconds", "histogram"),
        ("l3map_store_writable", "gauge"),
        ("l3map_store_write_failures", "counter"),
        ("l3map_retention_deleted", "counter"),
        ("l3map_build", "info"),
        ("l3map_http_request_duration_seconds", "histogram"),
        ("l3map_fanout_changes", "counter"),
        ("l3map_fanout_tickets", "counter"),
        ("l3map_fanout_new_events", "counter"),
        ("l3map_batches", "counter"),
        ("l3map_batch_tickets", "counter"),
        ("l3map_link_lookups", "counter"),
        ("l3map_fanout_refused", "counter"),
    ] {
        let help = format!("# HELP {family} ");
        let line = text
            .lines()
            .find(|l| l.starts_with(&help))
            .unwrap_or_else(|| panic!("no help for {family} in:\n{text}"));
        assert!(line.len() > help.len() + 10, "thin help: {line}");
        assert!(
            has_line(&text, &format!("# TYPE {family} {kind}")),
            "{family} is not a {kind}"
        );
    }
    // 28 families, each HELP and TYPE, plus # EOF and four # UNIT.
    assert_eq!(text.lines().filter(|l| l.starts_with('#')).count(), 61);
    // The store's totals, brought up to by a scrape, never past them.
    assert!(has_line(&text, "l3map_store_writable 0"), "{text}");
    assert!(
        has_line(&text, "l3map_store_write_failures_total 2"),
        "{text}"
    );
    assert!(
        has_line(&text, "l3map_retention_deleted_total{what=\"events\"} 3"),
        "{text}"
    );
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let sample = parse_sample(line).unwrap_or_else(|| panic!("unparsable {line:?}"));
        assert!(sample.name.starts_with("l3map_"), "{line}");
        assert!(sample.value.parse::<f64>().is_ok(), "{line}");
    }
}

#[test]
fn counters_show_up_with_their_labels() {
    let m = Metrics::new();
    m.events_in("webhook");
    m.events_in("webhook");
    m.events_in("zendesk_poll");
    m.event_duplicate("salesforce_poll");
    m.event_rejected("webhook", "bad_signature");
    m.action("comment", "applied");
    m.action("comment", "applied");
    m.action("set_status", "refused");
    m.api_call("desk", "ok");
    m.api_call("desk", "error");
    m.api_error("desk", "rate_limited");
    m.rate_limited("desk");
    m.retry("crm");
    m.reload("ok");
    m.reload("failed");

    for line in [
        r#"l3map_events_total{source="webhook"} 2"#,
        r#"l3map_events_total{source="zendesk_poll"} 1"#,
        r#"l3map_events_duplicate_total{source="salesforce_poll"} 1"#,
        r#"l3map_events_rejected_total{source="webhook",reason="bad_signature"} 1"#,
        r#"l3map_actions_total{kind="comment",result="applied"} 2"#,
        r#"l3map_actions_total{kind="set_status",result="refused"} 1"#,
        r#"l3map_api_calls_total{connection="desk",outcome="ok"} 1"#,
        r#"l3map_api_calls_total{connection="desk",outcome="error"} 1"#,
        r#"l3map_api_errors_total{connection="desk",kind="rate_limited"} 1"#,
        r#"l3map_api_429_total{connection="desk"} 1"#,
        r#"l3map_retries_total{connection="crm"} 1"#,
        r#"l3map_reloads_total{result="ok"} 1"#,
        r#"l3map_reloads_total{result="failed"} 1"#,
    ] {
        assert_line(&m, line);
    }
}

#[test]
fn gauges_show_the_last_value_set() {
    let m = Metrics::new();
    assert_line(&m, "l3map_outbox_depth 0");
    m.set_outbox(7, 12.5);
    m.set_dead_letters(3);
    assert_line(&m, "l3map_outbox_depth 7");
    assert_line(&m, "l3map_outbox_oldest_age_seconds 12.5");
    assert_line(&m, "l3map_outbox_dead_letters 3");
    m.set_outbox(0, 0.0);
    m.set_dead_letters(0);
    assert_line(&m, "l3map_outbox_depth 0");
    assert_line(&m, "l3map_outbox_oldest_age_seconds 0.0");
    assert_line(&m, "l3map_outbox_dead_letters 0");
    assert!(m
        .render()
        .contains("# UNIT l3map_outbox_oldest_age_seconds seconds\n"));
}

#[test]
fn revision_gauge_keeps_only_the_current_revision() {
    let m = Metrics::new();
    m.set_revision_info("r1");
    assert_line(&m, r#"l3map_mappings_revision_info{revision="r1"} 1"#);
    m.set_revision_info("r2");
    let text = m.render();
    assert!(has_line(
        &text,
        r#"l3map_mappings_revision_info{revision="r2"} 1"#
    ));
    assert!(!text.contains(r#"revision="r1""#), "{text}");
    assert_eq!(
        text.lines()
            .filter(|l| l.starts_with("l3map_mappings_revision_info{"))
            .count(),
        1
    );
}

#[test]
fn turn_latency_buckets_bracket_the_three_second_target() {
    let m = Metrics::new();
    m.turn_latency(0.2);
    m.turn_latency(2.5);
    m.turn_latency(4.0);
    for line in [
        "l3map_turn_latency_seconds_count 3",
        "l3map_turn_latency_seconds_sum 6.7",
        r#"l3map_turn_latency_seconds_bucket{le="0.005"} 0"#,
        r#"l3map_turn_latency_seconds_bucket{le="0.25"} 1"#,
        r#"l3map_turn_latency_seconds_bucket{le="2.0"} 1"#,
        r#"l3map_turn_latency_seconds_bucket{le="3.0"} 2"#,
        r#"l3map_turn_latency_seconds_bucket{le="5.0"} 3"#,
        r#"l3map_turn_latency_seconds_bucket{le="10.0"} 3"#,
        r#"l3map_turn_latency_seconds_bucket{le="+Inf"} 3"#,
    ] {
        assert_line(&m, line);
    }
    let text = m.render();
    let buckets: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("l3map_turn_latency_seconds_bucket"))
        .collect();
    assert_eq!(buckets.len(), TURN_LATENCY_BUCKETS.len() + 1, "{text}");
}

#[test]
fn action_latency_goes_up_to_a_minute_and_ignores_clock_steps_back() {
    let m = Metrics::new();
    m.action_latency(0.005);
    m.action_latency(45.0);
    m.action_latency(-3.0);
    m.action_latency(f64::NAN);
    for line in [
        "l3map_action_latency_seconds_count 4",
        "l3map_action_latency_seconds_sum 45.005",
        r#"l3map_action_latency_seconds_bucket{le="0.01"} 3"#,
        r#"l3map_action_latency_seconds_bucket{le="30.0"} 3"#,
        r#"l3map_action_latency_seconds_bucket{le="60.0"} 4"#,
        r#"l3map_action_latency_seconds_bucket{le="+Inf"} 4"#,
    ] {
        assert_line(&m, line);
    }
}

#[test]
fn counter_value_reads_back_what_was_counted() {
    let m = Metrics::new();
    assert_eq!(
        m.counter_value("l3map_api_429_total", &[("connection", "desk")]),
        0
    );
    m.rate_limited("desk");
    m.rate_limited("desk");
    m.rate_limited("crm");
    m.action("comment", "applied");
    assert_eq!(
        m.counter_value("l3map_api_429_total", &[("connection", "desk")]),
        2
    );
    assert_eq!(
        m.counter_value("l3map_api_429_total", &[("connection", "crm")]),
        1
    );
    // Label order does not matter; a partial label set is not a match.
    assert_eq!(
        m.counter_value(
            "l3map_actions_total",
            &[("result", "applied"), ("kind", "comment")]
        ),
        1
    );
    assert_eq!(
        m.counter_value("l3map_actions_total", &[("kind", "comment")]),
        0
    );
    assert_eq!(
        m.counter_value("l3map_api_429", &[("connection", "desk")]),
        0
    );
}

#[test]
fn clones_share_state() {
    let m = Metrics::new();
    let c = m.clone();
    c.events_in("agent");
    c.set_revision_info("abc");
    m.events_in("agent");
    assert_eq!(
        m.counter_value("l3map_events_total", &[("source", "agent")]),
        2
    );
    assert_eq!(m.render(), c.render());
    assert_line(&m, r#"l3map_mappings_revision_info{revision="abc"} 1"#);
}

#[test]
fn a_stray_quote_does_not_break_the_exposition() {
    let m = Metrics::new();
    m.api_error("desk", "odd\"kind\\\n");
    assert_line(
        &m,
        r#"l3map_api_errors_total{connection="desk",kind="odd\"kind\\\n"} 1"#,
    );
    assert_eq!(
        m.counter_value(
            "l3map_api_errors_total",
            &[("connection", "desk"), ("kind", "odd\"kind\\\n")]
        ),
        1
    );
}

#[test]
fn content_type_names_openmetrics() {
    assert!(CONTENT_TYPE.starts_with("application/openmetrics-text; version=1.0.0"));
}

#[test]
fn typed_reads_agree_with_the_exposition() {
    let m = Metrics::new();
    m.connection("desk");
    m.connection("crm");
    m.api_call("desk", "ok");
    m.api_call("desk", "error");
    m.api_error("desk", "transient");
    m.api_error("desk", "budget");
    m.rate_limited("desk");
    m.api_call("crm", "ok");
    m.retry("crm");
    assert_eq!(
        m.api_counts("desk"),
        ApiCounts {
            calls: 2,
            errors: 2,
            rate_limited: 1,
            retries: 0,
        }
    );
    assert_eq!(m.api_counts("nobody"), ApiCounts::default());
    let families = [
        "l3map_api_calls_total",
        "l3map_api_errors_total",
        "l3map_api_429_total",
        "l3map_retries_total",
    ];
    let as_scraped = |labels: &[(&str, &str)]| {
        let [calls, errors, rate_limited, retries] = families.map(|f| m.counter_sum(f, labels));
        ApiCounts {
            calls,
            errors,
            rate_limited,
            retries,
        }
    };
    for c in ["desk", "crm"] {
        assert_eq!(m.api_counts(c), as_scraped(&[("connection", c)]), "{c}");
    }
    assert_eq!(m.api_totals(), as_scraped(&[]));
    assert_eq!(m.api_totals().calls, 3);
}
