//! `l3map lsp`, spoken to as an editor does: the real binary, JSON-RPC over
//! its stdin and stdout, every wait bounded so a hung server fails the test
//! instead of hanging CI.

use crate::common;

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};
use tempfile::TempDir;

const WAIT: Duration = Duration::from_secs(30);

struct Server {
    child: Child,
    stdin: ChildStdin,
    rx: Receiver<Value>,
    next_id: i64,
    /// Messages read while waiting for something else.
    seen: Vec<Value>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start() -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_l3map"))
            .arg("lsp")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            loop {
                let mut len = None;
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let line = line.trim_end();
                    if line.is_empty() {
                        break;
                    }
                    if let Some(v) = line.strip_prefix("Content-Length: ") {
                        len = v.parse::<usize>().ok();
                    }
                }
                let mut body = vec![0; len.expect("a Content-Length header")];
                if r.read_exact(&mut body).is_err() {
                    return;
                }
                let v: Value = serde_json::from_slice(&body).expect("a JSON message");
                if tx.send(v).is_err() {
                    return;
                }
            }
        });
        Server {
            child,
            stdin,
            rx,
            next_id: 1,
            seen: Vec::new(),
        }
    }

    fn send(&mut self, v: Value) {
        let body = v.to_string();
        write!(self.stdin, "Content-Length: {}\r\n\r\n{body}", body.len()).unwrap();
        self.stdin.flush().unwrap();
    }

    fn notify(&mut self, method: &str, params: Value) {
        self.send(json!({"jsonrpc": "2.0", "method": method, "params": params}));
    }

    /// The first message (already seen or new) matching `pred`.
    fn wait_for(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        if let Some(i) = self.seen.iter().position(&pred) {
            return self.seen.remove(i);
        }
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(v) if pred(&v) => return v,
                Ok(v) => self.seen.push(v),
                Err(_) => panic!("no {what} within {WAIT:?}; seen: {:#?}", self.seen),
            }
        }
    }

    fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        let resp = self.wait_for(method, |v| v["id"] == id);
        assert!(resp.get("error").is_none(), "{method}: {resp}");
        resp["result"].clone()
    }

    fn diagnostics_for(&mut self, uri: &str) -> Vec<Value> {
        let uri = uri.to_string();
        let n = self.wait_for("publishDiagnostics", |v| {
            v["method"] == "textDocument/publishDiagnostics" && v["params"]["uri"] == uri.as_str()
        });
        n["params"]["diagnostics"].as_array().unwrap().clone()
    }
}

fn project(name: &str) -> TempDir {
    common::temp_dir(&format!("lsp-{name}"))
}

fn uri(p: &Path) -> String {
    format!("file://{}", p.display())
}

const DESK: &str = r#"connection desk: zendesk {
  subdomain  "acme"
  token      env("ZENDESK_OAUTH_TOKEN")
  scopes     read, write, tickets:write
}

statuses desk {
  new     new     "New"
  open    open    "Open"
  solved  solved  "Solved"  terminal

  new  -> open
  open -> solved  when ticket.tier == gold
}

fields desk {
  tier  #360001234  enum(gold, silver)  "Tier"
}
"#;

/// The broken file: an unknown status after non-ASCII text on its line, so
/// UTF-16 columns, characters and bytes all differ.
const BROKEN: &str = "template hi \"Grüße 🎉\"\n\nescalation e {\n  when turn.intent == \"x\"\n  reason \"Rückerstattung 🎉\"  status desk solvd\n  comment desk hi\n}\n";

fn position_of(text: &str, needle: &str) -> (u32, u32) {
    let at = text.find(needle).unwrap();
    let line = text[..at].matches('\n').count() as u32;
    let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let col: usize = text[line_start..at].chars().map(char::len_utf16).sum();
    (line, col as u32)
}

fn init(s: &mut Server, root: &Path) {
    let r = s.request(
        "initialize",
        json!({"processId": null, "rootUri": uri(root), "capabilities": {}}),
    );
    assert_eq!(r["serverInfo"]["name"], "l3map");
    assert_eq!(r["capabilities"]["hoverProvider"], true);
    s.notify("initialized", json!({}));
}

fn open(s: &mut Server, path: &Path, text: &str) {
    s.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": uri(path), "languageId": "l3map", "version": 1, "text": text}}),
    );
}

fn change(s: &mut Server, path: &Path, version: i32, text: &str) {
    s.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": uri(path), "version": version},
               "contentChanges": [{"text": text}]}),
    );
}

/// A request about one position of a document.
fn at(s: &mut Server, method: &str, path: &Path, (line, col): (u32, u32), extra: Value) -> Value {
    let mut params = json!({"textDocument": {"uri": uri(path)},
                            "position": {"line": line, "character": col}});
    if let (Some(p), Value::Object(e)) = (params.as_object_mut(), extra) {
        p.extend(e);
    }
    s.request(method, params)
}

fn field<'v>(v: &'v Value, key: &str) -> Vec<&'v str> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x[key].as_str().unwrap())
        .collect()
}

fn shifted((line, col): (u32, u32), by: u32) -> (u32, u32) {
    (line, col + by)
}

#[test]
fn an_editor_session() {
    let tmp = project("session");
    let dir = tmp.path();
    std::fs::write(dir.join("desk.l3map"), DESK).unwrap();
    let esc = dir.join("escalation.l3map");
    std::fs::write(&esc, BROKEN).unwrap();
    let mut s = Server::start();
    init(&mut s, dir);

    // Diagnostics: the same message and span as `l3map check --format json`.
    open(&mut s, &esc, BROKEN);
    let diags = s.diagnostics_for(&uri(&esc));
    let check = Command::new(env!("CARGO_BIN_EXE_l3map"))
        .args(["check", "--format", "json"])
        .arg(dir)
        .output()
        .unwrap();
    let cli: Vec<Value> = serde_json::from_slice(&check.stdout).unwrap();
    let cli: Vec<&Value> = cli
        .iter()
        .filter(|d| d["file"].as_str().unwrap().ends_with("escalation.l3map"))
        .collect();
    assert_eq!(diags.len(), cli.len(), "{diags:#?}\n{cli:#?}");
    let unknown = diags
        .iter()
        .find(|d| d["code"] == "l3map::unknown_name")
        .unwrap_or_else(|| panic!("no unknown-status diagnostic: {diags:#?}"));
    let (line, col) = position_of(BROKEN, "solvd");
    assert_eq!(
        unknown["range"]["start"],
        json!({"line": line, "character": col})
    );
    assert_eq!(
        unknown["range"]["end"],
        json!({"line": line, "character": col + 5})
    );
    // Columns are UTF-16 units: not bytes, not characters.
    let line_text = BROKEN.lines().nth(line as usize).unwrap();
    let byte_col = line_text.find("solvd").unwrap() as u32;
    let char_col = line_text[..byte_col as usize].chars().count() as u32;
    assert!(col != byte_col && col != char_col);
    let same = cli
        .iter()
        .find(|d| d["code"] == "l3map::unknown_name")
        .unwrap();
    let message = unknown["message"].as_str().unwrap();
    assert!(
        message.starts_with(same["message"].as_str().unwrap()),
        "{message} vs {}",
        same["message"]
    );
    assert!(message.contains("did you mean `solved`?"), "{message}");
    assert_eq!(same["line"], line + 1);
    assert_eq!(same["column"], char_col + 1);

    // Fixing the file clears them.
    let fixed = BROKEN.replace("solvd", "solved");
    change(&mut s, &esc, 2, &fixed);
    let diags = s.diagnostics_for(&uri(&esc));
    assert!(diags.is_empty(), "{diags:#?}");

    // Hover on a status used in another file: its category and label.
    let solved = position_of(&fixed, "solved");
    let h = at(
        &mut s,
        "textDocument/hover",
        &esc,
        shifted(solved, 2),
        json!({}),
    );
    let md = h["contents"]["value"].as_str().unwrap();
    assert!(md.contains("**status** `solved` of `desk`"), "{md}");
    assert!(md.contains("category: **solved**"), "{md}");
    assert!(md.contains("\"Solved\""), "{md}");

    // Hover on a field path in a condition: its type and id.
    let desk = dir.join("desk.l3map");
    open(&mut s, &desk, DESK);
    let tier = shifted(position_of(DESK, "tier == gold"), 1);
    let h = at(&mut s, "textDocument/hover", &desk, tier, json!({}));
    let md = h["contents"]["value"].as_str().unwrap();
    assert!(
        md.contains("**field** `tier` of `desk`") && md.contains("#360001234"),
        "{md}"
    );

    // Hover on a transition's arrow: what the rule does.
    let arrow = position_of(DESK, "-> solved");
    let h = at(&mut s, "textDocument/hover", &desk, arrow, json!({}));
    let md = h["contents"]["value"].as_str().unwrap();
    assert!(
        md.contains("may move to `solved` when `ticket.tier == gold`"),
        "{md}"
    );

    // Go to definition: from the escalation to the status table in desk.l3map.
    let d = at(&mut s, "textDocument/definition", &esc, solved, json!({}));
    let (def_line, def_col) = position_of(DESK, "solved  solved");
    assert_eq!(d[0]["uri"], uri(&desk));
    assert_eq!(
        d[0]["range"]["start"],
        json!({"line": def_line, "character": def_col})
    );

    // References of the template: its declaration and its one use.
    let template = position_of(&fixed, "hi \"");
    let with_decl = json!({"context": {"includeDeclaration": true}});
    let r = at(&mut s, "textDocument/references", &esc, template, with_decl);
    assert_eq!(r.as_array().unwrap().len(), 2, "{r:#}");

    // Completion: status names, and field aliases after `ticket.`.
    let c = at(
        &mut s,
        "textDocument/completion",
        &esc,
        shifted(solved, 2),
        json!({}),
    );
    assert_eq!(field(&c, "label"), vec!["solved"], "prefix `so`");
    let intent = position_of(&fixed, "turn.intent");
    change(
        &mut s,
        &esc,
        3,
        &fixed.replacen("turn.intent", "ticket.ti", 1),
    );
    let c = at(
        &mut s,
        "textDocument/completion",
        &esc,
        shifted(intent, 9),
        json!({}),
    );
    assert_eq!(field(&c, "label"), vec!["ticket.tier"]);

    // Formatting: one edit whose text is what `l3map fmt` writes.
    let messy = DESK
        .replace("new  -> open", "new->open")
        .replace("  subdomain  ", "subdomain ");
    change(&mut s, &desk, 2, &messy);
    let f = s.request(
        "textDocument/formatting",
        json!({"textDocument": {"uri": uri(&desk)}, "options": {"tabSize": 2, "insertSpaces": true}}),
    );
    assert_eq!(f.as_array().unwrap().len(), 1, "{f:#}");
    assert_eq!(f[0]["newText"], DESK);

    // The outline of the desk file.
    let o = s.request(
        "textDocument/documentSymbol",
        json!({"textDocument": {"uri": uri(&desk)}}),
    );
    assert_eq!(
        field(&o, "name"),
        vec!["desk", "statuses desk", "fields desk"]
    );

    // Nonsense is answered with an error, and the server lives on.
    s.send(
        json!({"jsonrpc": "2.0", "id": 999, "method": "textDocument/hover", "params": {"nope": 1}}),
    );
    let e = s.wait_for("an error", |v| v["id"] == 999);
    assert_eq!(e["error"]["code"], -32602);

    let _ = s.request("shutdown", Value::Null);
    s.notify("exit", Value::Null);
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(status) = s.child.try_wait().unwrap() {
            assert!(status.success(), "{status}");
            break;
        }
        assert!(Instant::now() < deadline, "the server did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn completion_offers_the_lockfile_field_ids_and_salesforce_fields() {
    let tmp = project("lock");
    let dir = tmp.path();
    std::fs::write(dir.join("desk.l3map"), DESK).unwrap();
    std::fs::write(
        dir.join("l3map.lock.json"),
        r#"{"lock_version": 1,
            "zendesk": {"desk": {"ticket_fields": [
              {"id": 360001234, "title": "Tier", "type": "tagger", "options": ["gold", "silver"]},
              {"id": 360009999, "title": "Region", "type": "text"}]}},
            "salesforce": {"crm": {"objects": {"Account": {"fields": {
              "Region__c": {"type": "string", "updateable": true}}}}}}}"#,
    )
    .unwrap();
    let mut s = Server::start();
    init(&mut s, dir);
    let desk = dir.join("desk.l3map");
    let typing = DESK.replace("tier  #360001234", "tier  #3600");
    open(&mut s, &desk, &typing);
    let pos = shifted(position_of(&typing, "#3600"), 5);
    let c = at(&mut s, "textDocument/completion", &desk, pos, json!({}));
    assert_eq!(field(&c, "label"), vec!["#360001234", "#360009999"]);
    assert_eq!(c[1]["detail"], "Region (text, desk)");
    // The edit replaces the `#3600` typed so far.
    assert_eq!(c[0]["textEdit"]["range"]["start"]["character"], pos.1 - 5);

    let typing = DESK.replace("ticket.tier == gold", "Account.Re");
    change(&mut s, &desk, 2, &typing);
    let pos = shifted(position_of(&typing, "Account.Re"), 10);
    let c = at(&mut s, "textDocument/completion", &desk, pos, json!({}));
    assert_eq!(field(&c, "label"), vec!["Account.Region__c"]);
}
