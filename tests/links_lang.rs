//! Record links through the real binary: `l3map check` on a project with
//! each link mistake (exit code and the diagnostic), `l3map compile` shows
//! the links in the IR, and `l3map fmt` lays link blocks out idempotently.

use crate::common;

use std::process::Output;

const BASE: &str = r#"connection desk: zendesk {
  subdomain "acme"
  token     env("ZD_TOKEN")
  scopes    SCOPES
}

connection crm: salesforce {
  instance      "https://acme.my.salesforce.com"
  client_id     env("SF_CLIENT_ID")
  client_secret env("SF_CLIENT_SECRET")
  refresh_token env("SF_REFRESH_TOKEN")
  scopes        api, refresh_token
  objects       Account, Contact, Case
}

fields desk {
  sla_tier  #360001  enum(enterprise, standard)
}

fields crm {
  Account.SLA_Tier__c        enum("Ent", "Std")
  Account.Zendesk_Org__c     string
  Case.Zendesk_Ticket_Id__c  string  external_id unique  "Zendesk ticket"
}

map crm -> desk {
  Account.SLA_Tier__c -> sla_tier {
    "Ent" => enterprise
    _     => standard
  }
}

LINKS
"#;

const GOOD_LINKS: &str = r#"link desk.organization <-> crm.Account {
  on      organization.external_id == Account.Id
  tickets unsolved
}

link desk.user <-> crm.Contact {
  on   Contact.Email == user.email
  pick newest
}

link desk.ticket <-> crm.Case {
  on      ticket.id == Case.Zendesk_Ticket_Id__c
  tickets all
}
"#;

fn project(links: &str, scopes: &str) -> tempfile::TempDir {
    let text = BASE.replace("SCOPES", scopes).replace("LINKS", links);
    common::project("links", &[("p.l3map", &text)])
}

fn run(args: &[&str], dir: &std::path::Path) -> Output {
    common::l3map()
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .output()
        .expect("run l3map")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn a_project_with_good_links_checks_clean_and_compiles_them() {
    let dir = project(GOOD_LINKS, "read, tickets:write");
    let o = run(&["check", "."], dir.path());
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("0 errors, 0 warnings"), "{}", text(&o));

    let o = run(&["compile", ".", "--emit", "ir"], dir.path());
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let ir: serde_json::Value = serde_json::from_slice(&o.stdout).expect("IR JSON");
    let links = ir["links"].as_array().expect("links in the IR");
    assert_eq!(links.len(), 3, "{links:#?}");
    assert_eq!(links[0]["zendesk"], "organization");
    assert_eq!(links[0]["object"], "Account");
    assert_eq!(links[0]["field"], "Id");
    assert_eq!(links[0]["zendesk_key"]["t"], "external_id");
    assert_eq!(
        links[0]["tickets"],
        serde_json::json!(["new", "open", "pending", "hold"])
    );
    assert_eq!(links[0]["pick"], "one");
    // Sides in either order; `pick newest` lowered.
    assert_eq!(links[1]["zendesk_key"]["t"], "email");
    assert_eq!(links[1]["field"], "Email");
    assert_eq!(links[1]["pick"], "newest");
    // `all`: every status a ticket can still be written in (not `closed`).
    assert_eq!(
        links[2]["tickets"],
        serde_json::json!(["new", "open", "pending", "hold", "solved"])
    );
    common::keep_on_panic(dir);
}

/// One project per mistake: `check` exits 1 and says what and how to fix it.
#[test]
fn each_link_mistake_is_a_diagnostic_with_its_fix() {
    let org = |on: &str, extra: &str| {
        format!("link desk.organization <-> crm.Account {{\n  on {on}\n{extra}}}\n")
    };
    let cases: Vec<(String, &str, &str, Vec<&str>)> =
        vec![
        (
            org("organization.external_id == Account.Id", "").replace("desk.", "dsk."),
            "read, tickets:write",
            "l3map::unknown_name",
            vec!["did you mean `desk`?"],
        ),
        (
            org("organization.external_id == Account.Id", "")
                .replace("crm.Account", "desk.Account"),
            "read, tickets:write",
            "l3map::wrong_connection_kind",
            vec!["use `crm`"],
        ),
        (
            "link desk.requester <-> crm.Account {\n  on requester.external_id == Account.Id\n}\n"
                .into(),
            "read, tickets:write",
            "l3map::link::zendesk_object",
            vec!["a ticket's requester is a `user`"],
        ),
        (
            org("organization.email == Account.Id", ""),
            "read, tickets:write",
            "l3map::link::zendesk_key",
            vec!["organization.external_id"],
        ),
        (
            org("organization.external_id == Account.Zendesk_Org_Id__c", ""),
            "read, tickets:write",
            "l3map::link::salesforce_field",
            vec!["did you mean `Zendesk_Org__c`?"],
        ),
        (
            org(
                "organization.external_id == Account.Zendesk_Org__c",
                "  pick newest\n",
            ),
            "read, tickets:write",
            "l3map::link::not_indexed",
            vec!["external_id", "SOQL must filter on an indexed field"],
        ),
        (
            "link desk.user <-> crm.Contact {\n  on user.email == Contact.Email\n}\n".into(),
            "read, tickets:write",
            "l3map::link::many",
            vec![
                "can match many Contact records where one is required",
                "pick newest",
            ],
        ),
        (
            org("organization.id == Account.SLA_Tier__c", ""),
            "read, tickets:write",
            "l3map::link::types",
            vec!["cannot be compared"],
        ),
        (
            "link desk.user <-> crm.Contact {\n  on user.email == Contact.Id\n}\n".into(),
            "read, tickets:write",
            "l3map::link::types",
            vec!["`user.email` (an email address)", "compare `user.email` with `Contact.Email`"],
        ),
        (
            org("organization.id == Account.Id", ""),
            "read, tickets:write",
            "l3map::link::types",
            vec!["a Salesforce record Id", "organization.external_id"],
        ),
        (
            format!(
                "{}\nlink desk.user <-> crm.Account {{\n  on user.external_id == Account.Id\n}}\n",
                org("organization.external_id == Account.Id", "")
            ),
            "read, tickets:write",
            "l3map::duplicate",
            vec!["declared twice"],
        ),
        (
            org("organization.external_id == Account.Id", "  tickets opne\n"),
            "read, tickets:write",
            "l3map::link::tickets",
            vec!["did you mean `open`?"],
        ),
        (
            org("organization.external_id == Account.Id", ""),
            "tickets:read, tickets:write",
            "l3map::scope::missing",
            vec!["organizations:read"],
        ),
        (
            "link desk.organization <-> crm.Account {\n  pick oldest\n}\n".into(),
            "read, tickets:write",
            "l3map::link::shape",
            vec!["pick newest"],
        ),
    ];
    for (links, scopes, code, says) in cases {
        let dir = project(&links, scopes);
        let o = run(&["check", "."], dir.path());
        let out = text(&o);
        assert_eq!(o.status.code(), Some(1), "{code}: {out}");
        assert!(out.contains(code), "{code} not reported:\n{out}");
        assert!(out.contains("help:"), "{code}: no help line:\n{out}");
        for s in says {
            assert!(out.contains(s), "{code}: `{s}` not said:\n{out}");
        }
    }
}

/// A Zendesk id against an Account Name is a warning: `check` exits 0.
#[test]
fn an_id_against_a_name_is_a_warning() {
    let dir = project(
        "link desk.organization <-> crm.Account {\n  on organization.id == Account.Name\n  pick newest\n}\n",
        "read, tickets:write",
    );
    let o = run(&["check", "."], dir.path());
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(
        out.contains("l3map::link::unlikely") && out.contains("only by accident"),
        "{out}"
    );
    common::keep_on_panic(dir);
}

#[test]
fn a_map_rule_without_a_link_is_a_warning_naming_the_link() {
    let dir = project("", "read, tickets:write");
    let o = run(&["check", "."], dir.path());
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "a warning only:\n{out}");
    assert!(out.contains("l3map::link::unlinked"), "{out}");
    assert!(
        out.contains("link desk.organization <-> crm.Account"),
        "{out}"
    );
}

#[test]
fn fmt_lays_out_links_and_field_attributes_idempotently() {
    let messy = BASE
        .replace("SCOPES", "read, tickets:write")
        .replace(
            "Case.Zendesk_Ticket_Id__c  string  external_id unique  \"Zendesk ticket\"",
            "Case.Zendesk_Ticket_Id__c string    external_id   unique \"Zendesk ticket\"",
        )
        .replace(
            "LINKS",
            "link   desk.organization<->crm.Account{\non organization.external_id==Account.Id\n      tickets new,open\npick newest }\n",
        );
    let dir = common::project("links-fmt", &[("p.l3map", &messy)]);
    let o = run(&["fmt", "."], dir.path());
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let once = std::fs::read_to_string(dir.path().join("p.l3map")).unwrap();
    assert!(
        once.contains(
            "link desk.organization <-> crm.Account {\n  on      organization.external_id == Account.Id\n  tickets new, open\n  pick    newest\n}"
        ),
        "{once}"
    );
    assert!(
        once.contains("external_id unique  \"Zendesk ticket\""),
        "{once}"
    );
    let o = run(&["fmt", "--check", "."], dir.path());
    assert_eq!(o.status.code(), Some(0), "not idempotent:\n{once}");
    let o = run(&["check", "."], dir.path());
    assert!(!text(&o).contains("error["), "{}", text(&o));
}

/// `l3map test` reaches tickets the way `l3map run`'s fan-out does: an
/// Account change on a ticket outside the link's `tickets` (the default
/// `unsolved`) decides nothing, so a test pinning "a solved ticket keeps
/// its SLA" passes and one claiming the opposite fails, saying why.
#[test]
fn l3map_test_applies_the_links_ticket_statuses() {
    let event = |status: &str| {
        format!(
            r#"  event """
  {{"kind": "record_changed",
   "ticket": {{"id": 7202, "status": "{status}"}},
   "records": {{"Account": {{"Id": "0015e00000Lnk01AAA", "SLA_Tier__c": "Ent"}}}},
   "changed": ["Account.SLA_Tier__c"]}}
  """"#
        )
    };
    let tests = format!(
        "{GOOD_LINKS}\ntest solved_keeps_its_sla {{\n{}\n  expect nothing\n}}\n\n\
         test pending_gets_the_tier {{\n{}\n  expect field desk sla_tier = enterprise\n}}\n",
        event("solved"),
        event("pending")
    );
    let dir = project(&tests, "read, tickets:write");
    let o = run(&["test", "."], dir.path());
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("2 passed; 0 failed"), "{}", text(&o));

    // The opposite claim fails, and the failure names the link's scope.
    let wrong = format!(
        "{GOOD_LINKS}\ntest solved_gets_the_tier {{\n{}\n  expect field desk sla_tier = enterprise\n}}\n",
        event("solved")
    );
    let dir2 = project(&wrong, "read, tickets:write");
    let o = run(&["test", "."], dir2.path());
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains("0 passed; 1 failed"), "{out}");
    assert!(
        out.contains("outside the statuses the link reaches")
            && out.contains("desk.organization <-> crm.Account")
            && out.contains("tickets new, open, pending, hold"),
        "{out}"
    );
    common::keep_on_panic(dir);
    common::keep_on_panic(dir2);
}
