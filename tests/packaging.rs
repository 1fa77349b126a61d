//! What a package installs beside the binary, checked with the real binary
//! and the real tools: shell completions that bash loads (zsh and fish
//! run where installed), and a man page that `man` renders.

use crate::common::{l3map, temp_dir};
use crate::deploy::tool;
use std::process::Command;

/// The subcommands every generated artefact must name.
const SUBCOMMANDS: [&str; 6] = ["check", "fmt", "test", "run", "e2e", "completions"];

fn stdout_of(args: &[&str]) -> String {
    let out = l3map().args(args).output().expect("l3map runs");
    assert_eq!(
        out.status.code(),
        Some(0),
        "l3map {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8")
}

#[test]
fn bash_loads_the_completions_and_registers_a_function() {
    let dir = temp_dir("completions");
    let script = dir.path().join("l3map.bash");
    std::fs::write(&script, stdout_of(&["completions", "bash"])).expect("write");
    // What a user puts in ~/.bashrc: `source <(l3map completions bash)`.
    let out = Command::new("bash")
        .args([
            "-c",
            &format!(
                "source <({} completions bash) && complete -p l3map",
                crate::common::BIN
            ),
        ])
        .output()
        .expect("bash runs");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        said.contains("-F _l3map") && said.trim_end().ends_with(" l3map"),
        "complete -p l3map: {said}"
    );
    // And the function completes a subcommand: `l3map ch<TAB>` offers check.
    let out = Command::new("bash")
        .args([
            "-c",
            &format!(
                "source {} && COMP_WORDS=(l3map ch) && COMP_CWORD=1 && COMP_LINE='l3map ch' && \
                 COMP_POINT=8 && _l3map l3map ch l3map && printf '%s\\n' \"${{COMPREPLY[@]}}\"",
                script.display()
            ),
        ])
        .output()
        .expect("bash runs");
    let offered = String::from_utf8_lossy(&out.stdout);
    assert!(
        offered.lines().any(|l| l == "check"),
        "l3map ch<TAB> offered {offered:?} ({})",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn zsh_and_fish_completions_name_the_subcommands() {
    for shell in ["zsh", "fish"] {
        let script = stdout_of(&["completions", shell]);
        for sub in SUBCOMMANDS {
            assert!(script.contains(sub), "{shell} completions lack {sub}");
        }
        if !tool(shell, false) {
            eprintln!("{shell} is not installed: its completions were not loaded");
            continue;
        }
        let load = match shell {
            "zsh" => "autoload -U compinit && compinit -u && source /dev/stdin",
            _ => "source",
        };
        let mut child = Command::new(shell)
            .args(["-c", load])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("the shell runs");
        use std::io::Write;
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(script.as_bytes())
            .expect("script written");
        let out = child.wait_with_output().expect("the shell ends");
        assert!(
            out.status.success(),
            "{shell} could not load its completions: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = l3map()
        .args(["completions", "tcsh"])
        .output()
        .expect("runs");
    assert_eq!(
        out.status.code(),
        Some(2),
        "an unknown shell is a usage error"
    );
}

#[test]
fn the_man_page_is_roff_that_man_renders() {
    let page = stdout_of(&["man"]);
    let th = page
        .lines()
        .position(|l| l.starts_with(".TH l3map 1"))
        .expect("a .TH title line");
    let name = page
        .lines()
        .position(|l| l == ".SH NAME")
        .expect("a NAME section");
    assert!(th < name, "the title comes first:\n{page}");
    // Only clap_mangen's string definitions come before the title.
    assert!(page.lines().take(th).all(|l| l.starts_with('.')), "{page}");
    for sub in SUBCOMMANDS {
        assert!(
            page.contains(&format!("l3map\\-{sub}(1)")),
            "no {sub}:\n{page}"
        );
    }
    // One page per subcommand, for a package's share/man/man1.
    let dir = temp_dir("man");
    let out = l3map()
        .args(["man", "--out-dir"])
        .arg(dir.path())
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0));
    for sub in SUBCOMMANDS {
        let p = dir.path().join(format!("l3map-{sub}.1"));
        let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        assert!(text.contains(".TH l3map-"), "{text}");
    }
    assert!(dir.path().join("l3map.1").exists());

    if !tool("man", true) {
        return;
    }
    let rendered = Command::new("man")
        .arg("-l")
        .arg(dir.path().join("l3map.1"))
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "100")
        .output()
        .expect("man runs");
    let text = String::from_utf8_lossy(&rendered.stdout);
    assert!(
        rendered.status.success(),
        "{}",
        String::from_utf8_lossy(&rendered.stderr)
    );
    assert!(
        text.contains("NAME") && text.contains("SUBCOMMANDS"),
        "{text}"
    );
    assert!(text.contains("l3map-check(1)"), "{text}");
}
