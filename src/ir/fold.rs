//! One walk over a [`Program`], written once (PRQL's `RqFold` is the
//! model). A pass implements [`Visit`] and overrides only the nodes it
//! cares about; every default method calls its `walk_*` function, which
//! visits the node's children in source order. An override that still
//! wants the children calls the `walk_*` function itself, so a pass can
//! note where it is (in a transition's condition, in a template) before
//! going down.
//!
//! Every place the IR names a field goes through [`Visit::field_ref`] (a
//! rule's field, with the type the rule gives it) or [`Visit::read`] (a
//! path an expression or a template reads). Nobody else walks the tree
//! by hand, and nobody searches its serialised form.
//!
//! Only a read-only visitor exists: no pass rewrites the IR yet. One that
//! must would add a fold taking and returning owned nodes beside it.

use super::{
    CommentBody, Connection, EscAction, Escalation, Expr, ExprKind, FieldRef, MapRule, Mapping,
    Program, Ref, SkuApply, SkuTable, StatusTable, Template, TemplatePart, Transition, Type,
};

/// A pass over a program. `'p` is the program's lifetime, so a pass may
/// keep references into it.
pub trait Visit<'p> {
    fn program(&mut self, p: &'p Program) {
        walk_program(self, p)
    }
    fn connection(&mut self, _c: &'p Connection) {}
    fn status_table(&mut self, t: &'p StatusTable) {
        walk_status_table(self, t)
    }
    fn transition(&mut self, t: &'p Transition) {
        walk_transition(self, t)
    }
    fn mapping(&mut self, m: &'p Mapping) {
        walk_mapping(self, m)
    }
    fn map_rule(&mut self, r: &'p MapRule) {
        walk_map_rule(self, r)
    }
    fn sku_table(&mut self, t: &'p SkuTable) {
        walk_sku_table(self, t)
    }
    fn sku_apply(&mut self, a: &'p SkuApply) {
        walk_sku_apply(self, a)
    }
    fn template(&mut self, t: &'p Template) {
        walk_parts(self, &t.parts)
    }
    fn escalation(&mut self, e: &'p Escalation) {
        walk_escalation(self, e)
    }
    fn esc_action(&mut self, a: &'p EscAction) {
        walk_esc_action(self, a)
    }
    fn expr(&mut self, e: &'p Expr) {
        walk_expr(self, e)
    }
    /// A field a rule writes or maps: `ty` is the type the rule gives it
    /// (a `map` rule's), `None` where the rule gives none.
    fn field_ref(&mut self, _f: &'p FieldRef, _ty: Option<&'p Type>) {}
    /// A path an expression or a template reads.
    fn read(&mut self, _r: &'p Ref) {}
}

/// The program's parts, in the order a reader meets them in the IR.
pub fn walk_program<'p, V: Visit<'p> + ?Sized>(v: &mut V, p: &'p Program) {
    p.connections.iter().for_each(|c| v.connection(c));
    p.status_tables.iter().for_each(|t| v.status_table(t));
    p.mappings.iter().for_each(|m| v.mapping(m));
    p.sku_tables.iter().for_each(|t| v.sku_table(t));
    p.templates.iter().for_each(|t| v.template(t));
    p.escalations.iter().for_each(|e| v.escalation(e));
}

pub fn walk_status_table<'p, V: Visit<'p> + ?Sized>(v: &mut V, t: &'p StatusTable) {
    t.transitions.iter().for_each(|tr| v.transition(tr));
}

pub fn walk_transition<'p, V: Visit<'p> + ?Sized>(v: &mut V, t: &'p Transition) {
    if let Some(w) = &t.when {
        v.expr(w);
    }
}

pub fn walk_mapping<'p, V: Visit<'p> + ?Sized>(v: &mut V, m: &'p Mapping) {
    m.rules.iter().for_each(|r| v.map_rule(r));
}

pub fn walk_map_rule<'p, V: Visit<'p> + ?Sized>(v: &mut V, r: &'p MapRule) {
    v.field_ref(&r.source, Some(&r.source_type));
    v.field_ref(&r.target, Some(&r.target_type));
}

pub fn walk_sku_table<'p, V: Visit<'p> + ?Sized>(v: &mut V, t: &'p SkuTable) {
    t.applies.iter().for_each(|a| v.sku_apply(a));
}

/// The target first, then what it reads.
pub fn walk_sku_apply<'p, V: Visit<'p> + ?Sized>(v: &mut V, a: &'p SkuApply) {
    v.field_ref(&a.target, None);
    v.read(&a.source);
}

pub fn walk_parts<'p, V: Visit<'p> + ?Sized>(v: &mut V, parts: &'p [TemplatePart]) {
    for p in parts {
        if let TemplatePart::Var { var, .. } = p {
            v.read(var);
        }
    }
}

/// The condition, then each action in order.
pub fn walk_escalation<'p, V: Visit<'p> + ?Sized>(v: &mut V, e: &'p Escalation) {
    v.expr(&e.when);
    e.actions.iter().for_each(|a| v.esc_action(a));
}

/// A `set`'s field, then its value; an inline comment's parts. A comment
/// naming a template reads through that template, visited on its own.
pub fn walk_esc_action<'p, V: Visit<'p> + ?Sized>(v: &mut V, a: &'p EscAction) {
    match a {
        EscAction::SetField { field, value, .. } => {
            v.field_ref(field, None);
            v.expr(value);
        }
        EscAction::Comment {
            body: CommentBody::Inline(parts),
            ..
        } => walk_parts(v, parts),
        EscAction::Comment {
            body: CommentBody::Template(_),
            ..
        }
        | EscAction::AssignGroup { .. }
        | EscAction::SetStatus { .. } => {}
    }
}

/// Every reference, in source order.
pub fn walk_expr<'p, V: Visit<'p> + ?Sized>(v: &mut V, e: &'p Expr) {
    match &e.kind {
        ExprKind::Ref(r) => v.read(r),
        ExprKind::Lit(_) => {}
        ExprKind::Not(x) => v.expr(x),
        ExprKind::List(xs) | ExprKind::And(xs) | ExprKind::Or(xs) => {
            xs.iter().for_each(|x| v.expr(x));
        }
        ExprKind::Cmp(_, a, b) => {
            v.expr(a);
            v.expr(b);
        }
    }
}

impl Expr {
    /// Every reference the condition reads, in source order.
    pub fn refs<'a>(&'a self, out: &mut Vec<&'a Ref>) {
        struct Refs<'o, 'a>(&'o mut Vec<&'a Ref>);
        impl<'a> Visit<'a> for Refs<'_, 'a> {
            fn read(&mut self, r: &'a Ref) {
                self.0.push(r);
            }
        }
        Refs(out).expr(self);
    }
}
