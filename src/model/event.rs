//! The event schema: the standard fields of each event root (`ticket.`,
//! `comment.`, `turn.`, `escalation.`), what the checker resolves paths
//! against and lowering types them with.

use super::Ty;

/// A standard field of an event root.
pub struct StdField {
    pub name: &'static str,
    pub ty: fn() -> Ty,
    pub doc: &'static str,
}

fn enum_of(v: &[&str]) -> Ty {
    Ty::Enum(v.iter().map(|s| s.to_string()).collect())
}

macro_rules! fields {
    ($( $name:literal : $ty:expr , $doc:literal ;)*) => {
        &[ $( StdField { name: $name, ty: { fn t() -> Ty { $ty } t }, doc: $doc } ),* ]
    };
}

pub static TICKET: &[StdField] = fields! {
    "id": Ty::Num, "the ticket id";
    "subject": Ty::Str, "the subject line";
    "description": Ty::Str, "the first comment";
    "status": Ty::Status(None), "the current status";
    "priority": enum_of(&["low", "normal", "high", "urgent"]), "the priority";
    "type": enum_of(&["problem", "incident", "question", "task"]), "the ticket type";
    "tags": Ty::List(Box::new(Ty::Str)), "the tags";
    "group": Ty::Str, "the assigned group's name";
    "assignee": Ty::Str, "the assignee's email";
    "requester_email": Ty::Str, "the requester's email";
    "requester_name": Ty::Str, "the requester's name";
    "channel": Ty::Str, "how the ticket arrived (email, web, chat, api)";
    "created_at": Ty::Date, "when it was created";
    "updated_at": Ty::Date, "when it last changed";
};

/// Standard ticket fields a mapping may write.
pub const TICKET_WRITABLE: &[&str] = &["priority", "type", "subject", "group", "tags"];

pub static COMMENT: &[StdField] = fields! {
    "body": Ty::Str, "the comment text";
    "author": enum_of(&["end_user", "agent", "system"]), "who wrote it";
    "public": Ty::Bool, "whether the requester can see it";
};

pub static TURN: &[StdField] = fields! {
    "intent": Ty::Str, "what the customer wants, as classified by the agent";
    "summary": Ty::Str, "a plain-language summary of the conversation";
    "attempts": Ty::List(Box::new(Ty::Str)), "what the agent tried";
    "sentiment": enum_of(&["positive", "neutral", "negative", "angry"]), "the customer's sentiment";
    "refund_amount": Ty::Money(None), "the refund asked for";
    "requested_status": Ty::Status(None), "the status the agent wants to set";
    "confidence": Ty::Num, "the agent's confidence, 0 to 1";
    "language": Ty::Str, "the conversation language (BCP 47)";
    "order_id": Ty::Str, "the order the customer refers to";
    "product": Ty::Str, "the product as the customer wrote it";
};

pub static ESCALATION: &[StdField] = fields! {
    "name": Ty::Str, "the escalation's name";
    "reason": Ty::Str, "the escalation's reason";
};

pub const ROOTS: &[&str] = &["ticket", "comment", "turn", "escalation"];
