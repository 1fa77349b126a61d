//! `l3map lsp`: a Language Server over stdio, so an editor shows the same
//! diagnostics as `l3map check` while the file is typed, plus hover,
//! go-to-definition, references, completion, formatting and the outline.
//!
//! Synchronous on purpose: a project is a handful of files that check in
//! milliseconds, so each message is answered from a fresh analysis of the
//! document's project (see [`workspace`]) and nothing is cached that could
//! go stale. Bad requests get JSON-RPC errors, never a panic.

mod complete;
mod diagnostics;
mod hover;
mod index;
mod outline;
pub mod position;
mod workspace;

use lsp_server::{Connection, ErrorCode, Message, Notification, Request, Response};
use lsp_types::notification::{
    DidChangeTextDocument, DidCloseTextDocument, DidOpenTextDocument, DidSaveTextDocument,
    LogMessage, Notification as _, PublishDiagnostics,
};
use lsp_types::request::{
    Completion, DocumentSymbolRequest, Formatting, GotoDefinition, HoverRequest, References,
    Request as _,
};
use lsp_types::{
    CompletionOptions, CompletionResponse, DocumentSymbolResponse, GotoDefinitionResponse, Hover,
    HoverContents, HoverProviderCapability, Location, LogMessageParams, MarkupContent, MarkupKind,
    MessageType, OneOf, Position, PublishDiagnosticsParams, ServerCapabilities,
    TextDocumentSyncCapability, TextDocumentSyncKind, TextEdit, Url,
};
use position::LineIndex;
use serde_json::Value;
use workspace::{Analysis, Workspace};

/// Serves one editor session on stdin/stdout until `exit`.
pub fn run() -> Result<(), String> {
    let (conn, io) = Connection::stdio();
    let (id, _params) = conn.initialize_start().map_err(|e| e.to_string())?;
    let caps = ServerCapabilities {
        text_document_sync: Some(TextDocumentSyncCapability::Kind(TextDocumentSyncKind::FULL)),
        hover_provider: Some(HoverProviderCapability::Simple(true)),
        definition_provider: Some(OneOf::Left(true)),
        references_provider: Some(OneOf::Left(true)),
        completion_provider: Some(CompletionOptions {
            trigger_characters: Some(vec![".".into(), "#".into()]),
            ..Default::default()
        }),
        document_formatting_provider: Some(OneOf::Left(true)),
        document_symbol_provider: Some(OneOf::Left(true)),
        ..Default::default()
    };
    let result = serde_json::json!({
        "capabilities": caps,
        "serverInfo": {"name": "l3map", "version": env!("CARGO_PKG_VERSION")},
    });
    conn.initialize_finish(id, result)
        .map_err(|e| e.to_string())?;
    let mut server = Server {
        conn: &conn,
        ws: Workspace::default(),
    };
    for msg in &conn.receiver {
        match msg {
            Message::Request(req) => {
                if conn.handle_shutdown(&req).map_err(|e| e.to_string())? {
                    break;
                }
                let resp = server.request(req);
                server.send(resp.into());
            }
            Message::Notification(n) => server.notification(n),
            Message::Response(_) => {}
        }
    }
    drop(server);
    drop(conn);
    io.join().map_err(|e| e.to_string())
}

struct Server<'c> {
    conn: &'c Connection,
    ws: Workspace,
}

/// Why a request could not be answered.
struct Failed(ErrorCode, String);

impl Server<'_> {
    fn send(&self, m: Message) {
        // The editor went away: the receive loop ends on its own.
        let _ = self.conn.sender.send(m);
    }

    fn notify<N: lsp_types::notification::Notification>(&self, params: N::Params) {
        self.send(Notification::new(N::METHOD.into(), params).into());
    }

    fn request(&mut self, req: Request) -> Response {
        let id = req.id.clone();
        let result = match req.method.as_str() {
            HoverRequest::METHOD => self.hover(req.params),
            GotoDefinition::METHOD => self.definition(req.params),
            References::METHOD => self.references(req.params),
            Completion::METHOD => self.completion(req.params),
            Formatting::METHOD => self.formatting(req.params),
            DocumentSymbolRequest::METHOD => self.symbols(req.params),
            m => Err(Failed(
                ErrorCode::MethodNotFound,
                format!("{m} is not supported"),
            )),
        };
        match result {
            Ok(v) => Response::new_ok(id, v),
            Err(Failed(code, msg)) => Response::new_err(id, code as i32, msg),
        }
    }

    fn notification(&mut self, n: Notification) {
        let uri = match n.method.as_str() {
            DidOpenTextDocument::METHOD => params::<lsp_types::DidOpenTextDocumentParams>(n.params)
                .ok()
                .map(|p| {
                    self.ws
                        .open
                        .insert(p.text_document.uri.clone(), p.text_document.text);
                    p.text_document.uri
                }),
            DidChangeTextDocument::METHOD => {
                params::<lsp_types::DidChangeTextDocumentParams>(n.params)
                    .ok()
                    .map(|p| {
                        // Full sync: the last change holds the whole text.
                        if let Some(c) = p.content_changes.into_iter().last() {
                            self.ws.open.insert(p.text_document.uri.clone(), c.text);
                        }
                        p.text_document.uri
                    })
            }
            DidSaveTextDocument::METHOD => params::<lsp_types::DidSaveTextDocumentParams>(n.params)
                .ok()
                .map(|p| p.text_document.uri),
            DidCloseTextDocument::METHOD => {
                params::<lsp_types::DidCloseTextDocumentParams>(n.params)
                    .ok()
                    .map(|p| {
                        self.ws.open.remove(&p.text_document.uri);
                        p.text_document.uri
                    })
            }
            _ => None,
        };
        if let Some(uri) = uri {
            self.publish(&uri);
        }
    }

    /// Diagnostics for every file of the document's project: an edit in one
    /// file can fix or break its siblings.
    fn publish(&self, uri: &Url) {
        let a = self.ws.analyse(uri);
        if let Some(e) = &a.lock_error {
            self.notify::<LogMessage>(LogMessageParams {
                typ: MessageType::WARNING,
                message: format!("{e}; checking without the lockfile"),
            });
        }
        for (i, u) in a.uris.iter().enumerate() {
            let diagnostics = diagnostics::for_file(&a, crate::syntax::FileId(i as u32));
            self.notify::<PublishDiagnostics>(PublishDiagnosticsParams {
                uri: u.clone(),
                diagnostics,
                version: None,
            });
        }
    }

    /// The analysis of a document's project, the document's file in it and
    /// the byte offset of a position.
    fn at(
        &self,
        uri: &Url,
        pos: Position,
    ) -> Result<(Analysis, crate::syntax::FileId, usize), Failed> {
        let a = self.ws.analyse(uri);
        let file = a.file_of(uri).ok_or_else(|| {
            Failed(
                ErrorCode::InvalidParams,
                format!("{uri}: not an .l3map document"),
            )
        })?;
        let offset = LineIndex::new(a.text(file)).offset(pos);
        Ok((a, file, offset))
    }

    fn hover(&self, p: Value) -> Result<Value, Failed> {
        let p: lsp_types::HoverParams = params(p)?;
        let tdp = p.text_document_position_params;
        let (a, file, offset) = self.at(&tdp.text_document.uri, tdp.position)?;
        let hover = hover::hover(&a, file, offset).map(|(md, span)| Hover {
            contents: HoverContents::Markup(MarkupContent {
                kind: MarkupKind::Markdown,
                value: md,
            }),
            range: (span.file == file).then(|| {
                LineIndex::new(a.text(file)).range(span.start as usize, span.end as usize)
            }),
        });
        to_value(hover)
    }

    fn locations<'a>(
        a: &Analysis,
        spans: impl Iterator<Item = &'a index::Occurrence>,
    ) -> Vec<Location> {
        spans
            .filter_map(|o| {
                let uri = a.uris.get(o.span.file.0 as usize)?.clone();
                let idx = LineIndex::new(a.text(o.span.file));
                Some(Location::new(
                    uri,
                    idx.range(o.span.start as usize, o.span.end as usize),
                ))
            })
            .collect()
    }

    fn definition(&self, p: Value) -> Result<Value, Failed> {
        let p: lsp_types::GotoDefinitionParams = params(p)?;
        let tdp = p.text_document_position_params;
        let (a, file, offset) = self.at(&tdp.text_document.uri, tdp.position)?;
        let Some(o) = a.index.at(file, offset) else {
            return Ok(Value::Null);
        };
        let defs = Self::locations(&a, a.index.of(&o.sym).filter(|o| o.def));
        to_value(GotoDefinitionResponse::Array(defs))
    }

    fn references(&self, p: Value) -> Result<Value, Failed> {
        let p: lsp_types::ReferenceParams = params(p)?;
        let tdp = p.text_document_position;
        let (a, file, offset) = self.at(&tdp.text_document.uri, tdp.position)?;
        let Some(o) = a.index.at(file, offset) else {
            return Ok(Value::Null);
        };
        let with_decl = p.context.include_declaration;
        let refs = Self::locations(&a, a.index.of(&o.sym).filter(|o| with_decl || !o.def));
        to_value(refs)
    }

    fn completion(&self, p: Value) -> Result<Value, Failed> {
        let p: lsp_types::CompletionParams = params(p)?;
        let tdp = p.text_document_position;
        let (a, file, offset) = self.at(&tdp.text_document.uri, tdp.position)?;
        to_value(CompletionResponse::Array(complete::complete(
            &a, file, offset,
        )))
    }

    fn formatting(&self, p: Value) -> Result<Value, Failed> {
        let p: lsp_types::DocumentFormattingParams = params(p)?;
        let uri = p.text_document.uri;
        let (a, file, _) = self.at(&uri, Position::new(0, 0))?;
        let text = a.text(file);
        match crate::fmt::format(text) {
            Ok(f) if f == text => to_value(Vec::<TextEdit>::new()),
            Ok(f) => to_value(vec![TextEdit::new(LineIndex::new(text).full_range(), f)]),
            // The diagnostics already show the syntax error; nothing to do.
            Err(crate::fmt::FmtError::Syntax { .. }) => Ok(Value::Null),
            Err(e) => Err(Failed(ErrorCode::InternalError, e.to_string())),
        }
    }

    fn symbols(&self, p: Value) -> Result<Value, Failed> {
        let p: lsp_types::DocumentSymbolParams = params(p)?;
        let (a, file, _) = self.at(&p.text_document.uri, Position::new(0, 0))?;
        let Some(ast) = a.checked.files.get(file.0 as usize) else {
            return Ok(Value::Null);
        };
        to_value(DocumentSymbolResponse::Nested(outline::outline(
            ast,
            a.text(file),
        )))
    }
}

fn params<P: serde::de::DeserializeOwned>(v: Value) -> Result<P, Failed> {
    serde_json::from_value(v).map_err(|e| Failed(ErrorCode::InvalidParams, e.to_string()))
}

fn to_value(v: impl serde::Serialize) -> Result<Value, Failed> {
    serde_json::to_value(v).map_err(|e| Failed(ErrorCode::InternalError, e.to_string()))
}
