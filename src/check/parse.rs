//! Parsing every file of a project, on every core when it is large. Files
//! are independent until names are resolved, which [`super::check`] then
//! does on one thread.

use crate::syntax::ast;
use crate::syntax::{parse_file, FileId, SourceMap, SyntaxError};

/// Below this much text, parsing on one thread is faster than starting more.
const PARALLEL_PARSE_BYTES: usize = 512 * 1024;

/// Parses every file, in file order. Files are independent, so a large
/// project is parsed on every core (names are resolved afterwards, on one).
pub(super) fn parse_all(
    sources: &SourceMap,
    threads: usize,
) -> Vec<(FileId, (ast::File, Vec<SyntaxError>))> {
    let files: Vec<(FileId, &str)> = sources.files().map(|(id, f)| (id, &*f.text)).collect();
    let bytes: usize = files.iter().map(|(_, t)| t.len()).sum();
    if threads < 2 || files.len() < 2 || bytes < PARALLEL_PARSE_BYTES {
        return files
            .into_iter()
            .map(|(id, t)| (id, parse_file(id, t)))
            .collect();
    }
    // Chunks of roughly equal size in bytes, so one huge file does not
    // leave the other threads idle for long.
    let per_thread = bytes.div_ceil(threads);
    let mut chunks: Vec<Vec<(FileId, &str)>> = vec![Vec::new()];
    let mut filled = 0;
    for f in files {
        if filled >= per_thread {
            chunks.push(Vec::new());
            filled = 0;
        }
        filled += f.1.len();
        chunks.last_mut().expect("one chunk at least").push(f);
    }
    std::thread::scope(|scope| {
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|chunk| {
                scope.spawn(move || {
                    chunk
                        .into_iter()
                        .map(|(id, t)| (id, parse_file(id, t)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| match h.join() {
                Ok(parsed) => parsed,
                // A panic in a parser thread is a bug; surface it as one.
                Err(e) => std::panic::resume_unwind(e),
            })
            .collect()
    })
}
