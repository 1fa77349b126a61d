//! What a package installs beside the binary, generated from the parser
//! itself so it never drifts from it: shell completions
//! (`l3map completions bash|zsh|fish|elvish|powershell`) and man pages
//! (`l3map man`: l3map(1) as roff on stdout; `l3map man --out-dir DIR`:
//! l3map.1 and one page per subcommand, l3map-check.1 and so on, as git
//! ships them, for /usr/share/man/man1).

use super::{fail, Cli};
use clap::CommandFactory;
use clap_complete::Shell;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct CompletionArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: Shell,
}

#[derive(clap::Args)]
pub struct ManArgs {
    /// Write l3map.1 and a page per subcommand (l3map-check.1, ...) into
    /// this folder instead of printing l3map(1).
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
}

/// The completion script on stdout: `source <(l3map completions bash)`, or
/// a file in the shell's completion folder.
pub fn completions(a: CompletionArgs) -> u8 {
    let mut cmd = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(a.shell, &mut cmd, "l3map", &mut script);
    out!("{}", String::from_utf8_lossy(&script));
    0
}

/// l3map(1) on stdout, or every page into `--out-dir`.
pub fn man(a: ManArgs) -> u8 {
    let cmd = Cli::command();
    match a.out_dir {
        // l3map.1, and l3map-SUB.1 for each subcommand (and theirs:
        // l3map-outbox-list.1).
        Some(dir) => {
            match std::fs::create_dir_all(&dir).and_then(|()| clap_mangen::generate_to(cmd, &dir)) {
                Ok(()) => {
                    errln!("man pages written to {}", dir.display());
                    0
                }
                Err(e) => fail(format!("cannot write man pages to {}: {e}", dir.display())),
            }
        }
        None => {
            let mut page = Vec::new();
            if let Err(e) = clap_mangen::Man::new(cmd).render(&mut page) {
                return fail(format!("cannot render the man page: {e}"));
            }
            out!("{}", String::from_utf8_lossy(&page));
            0
        }
    }
}
