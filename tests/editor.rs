//! The VS Code extension in editor/vscode: its grammar, snippets and
//! manifest cover the language as the parser defines it (always checked),
//! and, where node and the extension's npm packages are installed
//! (`editor/check.sh`), its grammar test over mappings/ and its JSON-RPC
//! check against this very binary pass. Without them those two are skipped
//! with the reason printed: CI runs only `cargo test`.

use l3map::syntax::parser::ITEM_KEYWORDS;
use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;

fn vscode() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("editor/vscode")
}

fn json(rel: &str) -> Value {
    let text = std::fs::read_to_string(vscode().join(rel)).unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

#[test]
fn the_grammar_and_snippets_know_every_block() {
    let grammar = json("syntaxes/l3map.tmLanguage.json");
    assert_eq!(grammar["scopeName"], "source.l3map");
    let blocks = grammar["repository"]["keyword"]["patterns"][0]["match"]
        .as_str()
        .unwrap()
        .to_string();
    let snippets = json("snippets/l3map.json");
    let prefixes: Vec<String> = snippets
        .as_object()
        .unwrap()
        .values()
        .flat_map(|s| match &s["prefix"] {
            Value::String(p) => vec![p.clone()],
            Value::Array(ps) => ps
                .iter()
                .filter_map(|p| p.as_str().map(String::from))
                .collect(),
            _ => vec![],
        })
        .collect();
    for kw in ITEM_KEYWORDS {
        assert!(blocks.contains(kw), "the grammar does not highlight `{kw}`");
        assert!(
            prefixes.iter().any(|p| p == kw),
            "no snippet for `{kw}` blocks"
        );
    }
    let manifest = json("package.json");
    assert_eq!(
        manifest["contributes"]["languages"][0]["extensions"][0],
        ".l3map"
    );
    assert_eq!(
        manifest["contributes"]["configuration"]["properties"]["l3map.path"]["default"],
        "l3map"
    );
    assert!(json("package-lock.json")["packages"].is_object());
    assert!(json("language-configuration.json")["comments"]["lineComment"] == "//");
}

#[test]
fn the_extension_tests_pass_where_node_is_installed() {
    let node = Command::new("node").arg("--version").output();
    if node.is_err() {
        println!("skipped: node is not installed (see editor/README.md)");
        return;
    }
    if !vscode().join("node_modules/vscode-textmate").is_dir() {
        println!("skipped: the extension's npm packages are not installed (run editor/check.sh)");
        return;
    }
    for script in ["test/grammar.test.js", "test/server.test.js"] {
        let out = Command::new("node")
            .arg(script)
            .current_dir(vscode())
            .env("L3MAP", env!("CARGO_BIN_EXE_l3map"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{script} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
