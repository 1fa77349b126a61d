//! What a lockfile must hold together beyond its JSON shape, checked when
//! it is read: `schema pull` always writes it so, and a hand-edited or
//! merged file that is not would make the form checks (and the runtime's
//! refusals) quietly wrong. Each problem names its JSON path, like a type
//! error does.

use super::{Lockfile, ZendeskSchema};
use std::collections::BTreeMap;

/// The first inconsistency, as `path: what is wrong`.
pub(super) fn problem(lock: &Lockfile) -> Option<String> {
    lock.zendesk
        .iter()
        .find_map(|(conn, z)| zendesk(lock.lock_version, conn, z))
}

fn zendesk(version: u32, conn: &str, z: &ZendeskSchema) -> Option<String> {
    let at = format!("zendesk.{conn}");
    let Some(forms) = &z.ticket_forms else {
        return None;
    };
    if version < 2 {
        return Some(format!(
            "{at}.ticket_forms: lock_version {version} has no ticket forms (they came with lock_version 2)"
        ));
    }
    // Two defaults in one category: a status by category only would be
    // whichever came first. Zendesk has one default per category ("the
    // default custom ticket status in the Open category",
    // support.zendesk.com/hc/en-us/articles/4408894213018). A category
    // without one is not refused: `GET /api/v2/custom_statuses?default=true`
    // may leave out a category not in use (on-hold).
    let mut defaults: BTreeMap<&str, u64> = BTreeMap::new();
    for (i, s) in z.custom_statuses.iter().enumerate() {
        if !s.default {
            continue;
        }
        if let Some(first) = defaults.insert(s.status_category.as_str(), s.id) {
            return Some(format!(
                "{at}.custom_statuses[{i}].default: a second default of the `{}` category (#{first} is one, #{} another)",
                s.status_category, s.id
            ));
        }
    }
    let mut ids: BTreeMap<u64, usize> = BTreeMap::new();
    for (i, f) in forms.iter().enumerate() {
        if let Some(first) = ids.insert(f.id, i) {
            return Some(format!(
                "{at}.ticket_forms[{i}].id: form #{} is also ticket_forms[{first}]",
                f.id
            ));
        }
        // Only where the statuses were recorded: a file with forms and no
        // custom statuses has nothing to hold the forms' ids against.
        if z.custom_statuses.is_empty() {
            continue;
        }
        if let Some(dangling) = f
            .custom_status_ids
            .iter()
            .find(|id| !z.custom_statuses.iter().any(|s| s.id == **id))
        {
            return Some(format!(
                "{at}.ticket_forms[{i}].custom_status_ids: #{dangling} is not among {at}.custom_statuses"
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::super::Lockfile;

    fn err(zendesk: &str, version: u32) -> String {
        let text = format!(r#"{{"lock_version": {version}, "zendesk": {{"desk": {zendesk}}}}}"#);
        Lockfile::parse("l.json", &text)
            .map(|_| String::new())
            .unwrap_or_else(|e| e.to_string())
    }

    const STATUSES: &str = r#""custom_statuses": [
        {"id": 1, "agent_label": "Open", "status_category": "open", "default": true},
        {"id": 2, "agent_label": "Vendor", "status_category": "pending", "default": true}]"#;

    #[test]
    fn a_consistent_file_reads() {
        let z = format!(
            r#"{{"ticket_fields": [], {STATUSES}, "ticket_forms": [
            {{"id": 5, "name": "A", "active": true, "custom_status_ids": [1, 2]}}]}}"#
        );
        assert_eq!(err(&z, 2), "");
    }

    #[test]
    fn each_inconsistency_names_its_path() {
        let cases = [
            (
                format!(
                    r#"{{"ticket_fields": [], {STATUSES}, "ticket_forms": [
                    {{"id": 5, "name": "A", "active": true, "custom_status_ids": [1]}},
                    {{"id": 5, "name": "B", "active": true, "custom_status_ids": [1]}}]}}"#
                ),
                2,
                "zendesk.desk.ticket_forms[1].id: form #5 is also ticket_forms[0]",
            ),
            (
                format!(
                    r#"{{"ticket_fields": [], {STATUSES}, "ticket_forms": [
                    {{"id": 5, "name": "A", "active": true, "custom_status_ids": [1, 999]}}]}}"#
                ),
                2,
                "zendesk.desk.ticket_forms[0].custom_status_ids: #999 is not among",
            ),
            (
                r#"{"ticket_fields": [], "custom_statuses": [
                    {"id": 1, "agent_label": "Open", "status_category": "open", "default": true},
                    {"id": 3, "agent_label": "Open 2", "status_category": "open", "default": true}],
                    "ticket_forms": []}"#
                    .to_string(),
                2,
                "custom_statuses[1].default: a second default of the `open` category",
            ),
            (
                r#"{"ticket_fields": [], "ticket_forms": []}"#.to_string(),
                1,
                "zendesk.desk.ticket_forms: lock_version 1 has no ticket forms",
            ),
        ];
        for (z, version, want) in cases {
            let e = err(&z, version);
            assert!(e.contains(want), "want {want:?} in {e:?}");
            assert!(e.contains("l3map schema pull"), "{e}");
        }
    }
}
