//! What a program names, found once per compiled revision: its parts by
//! name, and every field it reads or writes with where. Built by one
//! [`Visit`] pass on first use and kept with the [`Program`] (a revision
//! never changes once lowered), so the runtime's pollers, the agent API,
//! the emulators' seeds and eval's name lookups ask it instead of walking
//! the tree each their own way.

use super::fold::{self, Visit};
use super::{
    Connection, EscAction, Escalation, FieldRef, Kind, Link, MapRule, Mapping, Program, Ref,
    SkuApply, Status, StatusTable, Template, Transition, Type, ZdObject,
};
use rustc_hash::FxHashMap;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

/// Where in the program a field is named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Site {
    /// A `map` rule's source or target.
    MapRule,
    /// The field an `apply` of a SKU table writes.
    SkuTarget,
    /// The path an `apply` of a SKU table reads.
    SkuSource,
    /// A transition's `when`.
    Transition,
    /// An escalation's `when`.
    EscalationWhen,
    /// The field an escalation's `set` writes.
    SetTarget,
    /// The value an escalation's `set` writes.
    SetValue,
    /// An escalation's inline comment.
    Comment,
    /// A named template.
    Template,
}

/// A field as the program names it.
#[derive(Debug, Clone, PartialEq)]
pub enum Named {
    /// A rule's field, with the type the rule gives it (a `map` rule's).
    Field { field: FieldRef, ty: Option<Type> },
    /// A path an expression or a template reads.
    Read(Ref),
}

/// One place the program names a field.
#[derive(Debug, Clone, PartialEq)]
pub struct Use {
    pub site: Site,
    pub named: Named,
}

/// The index of one program. Positions point into the program's lists;
/// ask through the [`Program`] methods below, which hand out the parts.
#[derive(Debug, Clone, Default)]
pub struct Index {
    uses: Vec<Use>,
    connections: FxHashMap<String, usize>,
    /// By connection; the first table of a connection (the checker allows one).
    status_tables: FxHashMap<String, usize>,
    /// Zendesk tables first, each group in program order: the order an
    /// agent's status request tries them in.
    request_order: Vec<usize>,
    /// Per table (by position): status name -> status position.
    statuses: Vec<FxHashMap<String, usize>>,
    templates: FxHashMap<String, usize>,
    escalations: FxHashMap<String, usize>,
    /// from -> to -> position.
    mappings: FxHashMap<String, FxHashMap<String, usize>>,
    ticket_fields: BTreeMap<String, u64>,
    /// connection -> object -> fields of it the program names. Reads of
    /// an IR lowered before reads carried their connection sit under "".
    salesforce: BTreeMap<String, BTreeMap<String, BTreeSet<String>>>,
}

impl Index {
    pub fn new(p: &Program) -> Index {
        let mut walk = Walk {
            site: Site::Transition,
            uses: vec![],
        };
        walk.program(p);
        let first = |names: Vec<String>| {
            let mut m = FxHashMap::default();
            for (i, n) in names.into_iter().enumerate() {
                m.entry(n).or_insert(i);
            }
            m
        };
        let connections = first(p.connections.iter().map(|c| c.name.clone()).collect());
        let kind = |name: &str| connections.get(name).map(|&i| p.connections[i].kind);
        let mut request_order: Vec<usize> = (0..p.status_tables.len()).collect();
        request_order.sort_by_key(|&i| kind(&p.status_tables[i].connection) != Some(Kind::Zendesk));
        let statuses = p
            .status_tables
            .iter()
            .map(|t| first(t.statuses.iter().map(|s| s.name.clone()).collect()))
            .collect();
        let mut salesforce = salesforce_fields(&walk.uses);
        // A link's field is read on every lookup and every change: it is
        // one of the fields the program names.
        for l in &p.links {
            salesforce
                .entry(l.crm.clone())
                .or_default()
                .entry(l.object.clone())
                .or_default()
                .insert(l.field.clone());
        }
        let mut index = Index {
            ticket_fields: ticket_fields(&walk.uses),
            salesforce,
            uses: walk.uses,
            status_tables: first(
                p.status_tables
                    .iter()
                    .map(|t| t.connection.clone())
                    .collect(),
            ),
            request_order,
            statuses,
            templates: first(p.templates.iter().map(|t| t.name.clone()).collect()),
            escalations: first(p.escalations.iter().map(|e| e.name.clone()).collect()),
            mappings: FxHashMap::default(),
            connections,
        };
        for (i, m) in p.mappings.iter().enumerate() {
            index
                .mappings
                .entry(m.from.clone())
                .or_default()
                .entry(m.to.clone())
                .or_insert(i);
        }
        index
    }

    /// Every place the program names a field, in program order
    /// ([`fold::walk_program`]'s).
    pub fn uses(&self) -> impl Iterator<Item = &Use> {
        self.uses.iter()
    }

    /// The Zendesk custom fields the program names (rules' fields, and
    /// paths read anywhere), alias to field id. A field no rule reads or
    /// writes is not here (nor needed): the IR keeps references, not
    /// declarations. Should two connections give one alias two ids, a
    /// rule's field wins over a read, then the first named.
    pub fn ticket_field_ids(&self) -> &BTreeMap<String, u64> {
        &self.ticket_fields
    }
}

/// Alias to id, rules' fields first (in program order), then reads in
/// the order the agent API has always met them: SKU sources, transitions,
/// escalations, templates.
fn ticket_fields(uses: &[Use]) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for u in uses {
        if let Named::Field {
            field:
                FieldRef::Zendesk {
                    field,
                    id: Some(id),
                    ..
                },
            ..
        } = &u.named
        {
            out.entry(field.clone()).or_insert(*id);
        }
    }
    let rank = |s: Site| match s {
        Site::SkuSource => 0,
        Site::Transition => 1,
        Site::Template => 3,
        _ => 2,
    };
    let mut reads: Vec<&Use> = uses
        .iter()
        .filter(|u| matches!(u.named, Named::Read(_)))
        .collect();
    reads.sort_by_key(|u| rank(u.site));
    for u in reads {
        if let Named::Read(Ref::TicketField { alias, id, .. }) = &u.named {
            out.entry(alias.clone()).or_insert(*id);
        }
    }
    out
}

fn salesforce_fields(uses: &[Use]) -> BTreeMap<String, BTreeMap<String, BTreeSet<String>>> {
    let mut out: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for u in uses {
        let (connection, path) = match &u.named {
            Named::Field {
                field:
                    FieldRef::Salesforce {
                        connection, path, ..
                    },
                ..
            }
            | Named::Read(Ref::Salesforce {
                connection, path, ..
            }) => (connection, path),
            _ => continue,
        };
        if let Some((object, field)) = path.split_once('.') {
            out.entry(connection.clone())
                .or_default()
                .entry(object.to_string())
                .or_default()
                .insert(field.to_string());
        }
    }
    out
}

/// The pass that collects the uses: notes where it is, then goes down.
struct Walk {
    site: Site,
    uses: Vec<Use>,
}

impl<'p> Visit<'p> for Walk {
    fn transition(&mut self, t: &'p Transition) {
        self.site = Site::Transition;
        fold::walk_transition(self, t)
    }
    fn map_rule(&mut self, r: &'p MapRule) {
        self.site = Site::MapRule;
        fold::walk_map_rule(self, r)
    }
    fn sku_apply(&mut self, a: &'p SkuApply) {
        self.site = Site::SkuTarget;
        self.field_ref(&a.target, None);
        self.site = Site::SkuSource;
        self.read(&a.source);
    }
    fn template(&mut self, t: &'p Template) {
        self.site = Site::Template;
        fold::walk_parts(self, &t.parts)
    }
    fn escalation(&mut self, e: &'p Escalation) {
        self.site = Site::EscalationWhen;
        fold::walk_escalation(self, e)
    }
    fn esc_action(&mut self, a: &'p EscAction) {
        match a {
            EscAction::SetField { field, value, .. } => {
                self.site = Site::SetTarget;
                self.field_ref(field, None);
                self.site = Site::SetValue;
                self.expr(value);
            }
            _ => {
                self.site = Site::Comment;
                fold::walk_esc_action(self, a)
            }
        }
    }
    fn field_ref(&mut self, f: &'p FieldRef, ty: Option<&'p Type>) {
        self.uses.push(Use {
            site: self.site,
            named: Named::Field {
                field: f.clone(),
                ty: ty.cloned(),
            },
        });
    }
    fn read(&mut self, r: &'p Ref) {
        self.uses.push(Use {
            site: self.site,
            named: Named::Read(r.clone()),
        });
    }
}

/// [`Index`] kept beside the program it indexes: built on first use. A
/// cache, not data: equal whatever it holds, empty when read back, and
/// empty in a clone (a clone may be edited before it is used).
#[derive(Debug, Default)]
pub struct IndexCache(OnceLock<Index>);

impl Clone for IndexCache {
    fn clone(&self) -> Self {
        IndexCache::default()
    }
}

impl PartialEq for IndexCache {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

/// Name lookups, answered by the index.
impl Program {
    /// The program's index, built on first use. A program is not edited
    /// once lowered; a clone starts without one.
    pub fn index(&self) -> &Index {
        self.index.0.get_or_init(|| Index::new(self))
    }

    pub fn connection(&self, name: &str) -> Option<&Connection> {
        let i = *self.index().connections.get(name)?;
        self.connections.get(i)
    }

    /// The kind of connection `name`.
    pub fn kind_of(&self, name: &str) -> Option<Kind> {
        self.connection(name).map(|c| c.kind)
    }

    /// The status table of connection `connection`.
    pub fn status_table(&self, connection: &str) -> Option<&StatusTable> {
        let i = *self.index().status_tables.get(connection)?;
        self.status_tables.get(i)
    }

    /// The status tables, Zendesk's first (each group in program order).
    pub fn status_tables_zendesk_first(&self) -> impl Iterator<Item = &StatusTable> {
        self.index()
            .request_order
            .iter()
            .filter_map(|&i| self.status_tables.get(i))
    }

    /// The status `name` of the table of connection `connection`.
    pub fn status(&self, connection: &str, name: &str) -> Option<&Status> {
        let index = self.index();
        let t = *index.status_tables.get(connection)?;
        let s = *index.statuses.get(t)?.get(name)?;
        self.status_tables[t].statuses.get(s)
    }

    pub fn template(&self, name: &str) -> Option<&Template> {
        let i = *self.index().templates.get(name)?;
        self.templates.get(i)
    }

    pub fn escalation(&self, name: &str) -> Option<&Escalation> {
        let i = *self.index().escalations.get(name)?;
        self.escalations.get(i)
    }

    /// The fields of `object` the program names on the Salesforce
    /// connection `connection`, relative to the object (`SLA_Tier__c`,
    /// `Account.Name` from `Case.Account.Name`): what its rules map or
    /// write there, and what its conditions and templates read there.
    pub fn salesforce_fields(&self, connection: &str, object: &str) -> BTreeSet<&str> {
        let is_salesforce = self.kind_of(connection) == Some(Kind::Salesforce);
        let index = self.index();
        let of = |c: &str| {
            index
                .salesforce
                .get(c)
                .and_then(|objects| objects.get(object))
                .into_iter()
                .flatten()
                .map(String::as_str)
        };
        let mut out: BTreeSet<&str> = of(connection).collect();
        if is_salesforce {
            out.extend(of(""));
        }
        out
    }

    /// The links to Salesforce object `object` of connection `crm`: what a
    /// change of one of its records fans out through.
    pub fn links_for_object<'a>(
        &'a self,
        crm: &'a str,
        object: &'a str,
    ) -> impl Iterator<Item = &'a Link> + 'a {
        self.links
            .iter()
            .filter(move |l| l.crm == crm && l.object == object)
    }

    /// The links from Zendesk record `zendesk` of connection `desk`: what a
    /// ticket's organization, requester or the ticket itself resolves through.
    pub fn links_from<'a>(
        &'a self,
        desk: &'a str,
        zendesk: ZdObject,
    ) -> impl Iterator<Item = &'a Link> + 'a {
        self.links
            .iter()
            .filter(move |l| l.desk == desk && l.zendesk == zendesk)
    }

    /// The `map from -> to` block.
    pub fn mapping(&self, from: &str, to: &str) -> Option<&Mapping> {
        let i = *self.index().mappings.get(from)?.get(to)?;
        self.mappings.get(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::{CommentBody, TemplatePart};
    use serde_json::Value as Json;

    fn examples() -> Vec<Program> {
        ["fintech", "saas", "shop"]
            .iter()
            .map(|name| {
                let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("mappings")
                    .join(name);
                crate::runtime::compile::compile(&dir).expect("the example compiles")
            })
            .collect()
    }

    /// The agent API's own walk before the index, kept here as the
    /// reference the index must answer alike.
    fn agent_api_walk(p: &Program) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        let mut field = |r: &FieldRef| {
            if let FieldRef::Zendesk {
                field,
                id: Some(id),
                ..
            } = r
            {
                out.entry(field.clone()).or_insert(*id);
            }
        };
        let parts = |ps: &'_ [TemplatePart], out: &mut Vec<Ref>| {
            for p in ps {
                if let TemplatePart::Var { var, .. } = p {
                    out.push(var.clone());
                }
            }
        };
        let mut refs: Vec<Ref> = Vec::new();
        let push = |e: &crate::ir::Expr, refs: &mut Vec<Ref>| {
            let mut v = Vec::new();
            e.refs(&mut v);
            refs.extend(v.into_iter().cloned());
        };
        for m in &p.mappings {
            for r in &m.rules {
                field(&r.source);
                field(&r.target);
            }
        }
        for t in &p.sku_tables {
            for a in &t.applies {
                field(&a.target);
                refs.push(a.source.clone());
            }
        }
        for t in &p.status_tables {
            for tr in &t.transitions {
                if let Some(w) = &tr.when {
                    push(w, &mut refs);
                }
            }
        }
        for e in &p.escalations {
            push(&e.when, &mut refs);
            for a in &e.actions {
                match a {
                    EscAction::SetField {
                        field: f, value, ..
                    } => {
                        field(f);
                        push(value, &mut refs);
                    }
                    EscAction::Comment {
                        body: CommentBody::Inline(ps),
                        ..
                    } => parts(ps, &mut refs),
                    _ => {}
                }
            }
        }
        for t in &p.templates {
            parts(&t.parts, &mut refs);
        }
        for r in refs {
            if let Ref::TicketField { alias, id, .. } = r {
                out.entry(alias).or_insert(id);
            }
        }
        out
    }

    /// The poller's JSON search before the index: every Salesforce path
    /// credited to `connection`, reads credited to every Salesforce one.
    fn poll_json_walk(p: &Program, connection: &str) -> BTreeSet<String> {
        let mut paths = BTreeSet::new();
        let is_sf = p.kind_of(connection) == Some(Kind::Salesforce);
        let v = serde_json::to_value(p).expect("serialises");
        let mut stack = vec![&v];
        while let Some(node) = stack.pop() {
            match node {
                Json::Object(m) => {
                    if m.get("system").and_then(Json::as_str) == Some("salesforce")
                        && m.get("connection").and_then(Json::as_str) == Some(connection)
                    {
                        if let Some(p) = m.get("path").and_then(Json::as_str) {
                            paths.insert(p.to_string());
                        }
                    }
                    if let Some(p) = m
                        .get("salesforce")
                        .and_then(|r| r.get("path"))
                        .and_then(Json::as_str)
                    {
                        if is_sf {
                            paths.insert(p.to_string());
                        }
                    }
                    stack.extend(m.values());
                }
                Json::Array(a) => stack.extend(a),
                _ => {}
            }
        }
        paths
    }

    #[test]
    fn the_index_answers_the_agent_api_walk_alike() {
        for p in examples() {
            assert_eq!(p.index().ticket_field_ids(), &agent_api_walk(&p));
        }
    }

    /// The examples have one Salesforce connection each, so crediting a
    /// read to its own connection changes nothing for them.
    #[test]
    fn the_index_answers_the_pollers_search_alike_with_one_org() {
        for p in examples() {
            for c in &p.connections {
                let mut before = poll_json_walk(&p, &c.name);
                // A link's Salesforce field is read too (the lookup key).
                for l in p.links.iter().filter(|l| l.crm == c.name) {
                    before.insert(format!("{}.{}", l.object, l.field));
                }
                let objects: BTreeSet<&str> = before
                    .iter()
                    .filter_map(|path| path.split_once('.').map(|(o, _)| o))
                    .collect();
                let mut after = BTreeSet::new();
                for o in objects {
                    for f in p.salesforce_fields(&c.name, o) {
                        after.insert(format!("{o}.{f}"));
                    }
                }
                assert_eq!(after, before, "{}", c.name);
            }
        }
    }

    #[test]
    fn lookups_by_name_find_the_first_of_each() {
        for p in examples() {
            for t in &p.templates {
                assert!(std::ptr::eq(p.template(&t.name).unwrap(), t));
            }
            for e in &p.escalations {
                assert!(std::ptr::eq(p.escalation(&e.name).unwrap(), e));
            }
            for m in &p.mappings {
                assert!(std::ptr::eq(p.mapping(&m.from, &m.to).unwrap(), m));
            }
            for t in &p.status_tables {
                assert!(std::ptr::eq(p.status_table(&t.connection).unwrap(), t));
                for s in &t.statuses {
                    assert!(std::ptr::eq(p.status(&t.connection, &s.name).unwrap(), s));
                }
            }
            assert!(p.template("no such template").is_none());
            assert!(p.kind_of("no such connection").is_none());
        }
    }
}
