//! The checker's diagnostics as LSP diagnostics: the same message, code
//! and primary span as `l3map check` prints, the help after the message
//! (editors show only the message), the other labels as related places.

use super::position::LineIndex;
use super::workspace::Analysis;
use crate::syntax::FileId;
use lsp_types::{
    Diagnostic, DiagnosticRelatedInformation, DiagnosticSeverity, Location, NumberOrString,
};
use miette::Severity;

pub fn for_file(a: &Analysis, file: FileId) -> Vec<Diagnostic> {
    let idx = LineIndex::new(a.text(file));
    let Some(uri) = a.uris.get(file.0 as usize) else {
        return Vec::new();
    };
    a.checked
        .diagnostics
        .iter()
        .filter(|d| d.file == file)
        .map(|d| {
            let labels = d.labels();
            let range = labels.first().map_or_else(
                || idx.range(0, 0),
                |l| idx.range(l.offset(), l.offset() + l.len()),
            );
            let related: Vec<DiagnosticRelatedInformation> = labels
                .iter()
                .skip(1)
                .map(|l| DiagnosticRelatedInformation {
                    location: Location::new(
                        uri.clone(),
                        idx.range(l.offset(), l.offset() + l.len()),
                    ),
                    message: l.label().unwrap_or("here").to_string(),
                })
                .collect();
            let mut message = d.message();
            if let Some(label) = labels.first().and_then(|l| l.label()) {
                message.push_str(&format!(" ({label})"));
            }
            if let Some(help) = d.help() {
                message.push_str(&format!("\nhelp: {help}"));
            }
            Diagnostic {
                range,
                severity: Some(match d.severity() {
                    Severity::Error => DiagnosticSeverity::ERROR,
                    Severity::Warning => DiagnosticSeverity::WARNING,
                    Severity::Advice => DiagnosticSeverity::HINT,
                }),
                code: Some(NumberOrString::String(d.code())),
                source: Some("l3map".into()),
                message,
                related_information: (!related.is_empty()).then_some(related),
                ..Default::default()
            }
        })
        .collect()
}
