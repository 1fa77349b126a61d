//! What the checker can say, one variant per distinct problem. Where it
//! applies is not here: [`super::CheckError`] holds it beside the kind.

use crate::syntax::Span;
use miette::Diagnostic;
use thiserror::Error;

/// Everything `l3map check` can say about a well-formed file. The words of
/// the underline at the error's place are in `labels.rs`.
#[derive(Debug, Clone, Error, Diagnostic, PartialEq)]
pub enum CheckErrorKind {
    // ------------------------------------------------------------ names
    /// Returned when two items of the same kind share a name.
    #[error("{kind} `{name}` is declared twice")]
    #[diagnostic(code(l3map::duplicate), help("{help}"))]
    Duplicate {
        kind: &'static str,
        name: String,
        #[label("first declared here")]
        first: Option<Span>,
        help: String,
    },
    /// Returned when a name refers to nothing declared.
    #[error("unknown {kind} `{name}`")]
    #[diagnostic(code(l3map::unknown_name))]
    Unknown {
        kind: &'static str,
        name: String,
        #[help]
        help: Option<String>,
    },
    /// Returned when a connection is used where another kind is required.
    #[error("`{name}` is a {actual} connection, but {what} needs a {expected} connection")]
    #[diagnostic(code(l3map::wrong_connection_kind), help("{help}"))]
    WrongConnectionKind {
        name: String,
        actual: String,
        expected: &'static str,
        what: String,
        help: String,
    },

    // ------------------------------------------------------------ connections
    /// Returned when a connection names a system l3map does not talk to.
    #[error("unknown connection kind `{kind}`")]
    #[diagnostic(
        code(l3map::connection::kind),
        help("l3map connects to `zendesk` and `salesforce`")
    )]
    UnknownConnectionKind { kind: String },
    /// Returned when a connection property is not known for its kind.
    #[error("unknown property `{key}` for a {kind} connection")]
    #[diagnostic(code(l3map::connection::property))]
    UnknownProperty {
        key: String,
        kind: String,
        #[help]
        help: Option<String>,
    },
    /// Returned when a required connection property is missing.
    #[error("{kind} connection `{conn}` has no `{key}`")]
    #[diagnostic(code(l3map::connection::missing), help("add `{example}` to the block"))]
    MissingProperty {
        kind: String,
        conn: String,
        key: &'static str,
        example: &'static str,
    },
    /// Returned when a Salesforce connection declares the credentials of
    /// both sign-in flows (refresh token and JWT bearer), or of neither.
    #[error("salesforce connection `{conn}` {problem}")]
    #[diagnostic(code(l3map::connection::credentials), help("{help}"))]
    SalesforceCredentials {
        conn: String,
        problem: String,
        help: String,
        label: String,
        #[label("the other flow")]
        other: Option<Span>,
    },
    /// Returned when a connection's property does not belong to the way it
    /// signs in (`token` on an `auth oauth_code` connection, say).
    #[error("{kind} connection `{conn}`: `{key}` does not go with {auth}")]
    #[diagnostic(code(l3map::connection::auth), help("{help}"))]
    AuthProperty {
        kind: String,
        conn: String,
        key: String,
        auth: String,
        help: String,
    },
    /// Returned when a Zendesk connection signs in with an API token,
    /// which Zendesk retires (developer.zendesk.com/documentation/api-basics/authentication/oauth-migration/).
    #[error("zendesk connection `{conn}` signs in with an API token: Zendesk stopped issuing API tokens on 2026-10-27 and deactivates all of them on 2027-04-30")]
    #[diagnostic(
        code(l3map::connection::api_token_retired),
        severity(Warning),
        help("use `auth oauth_code` with an OAuth client (`client_id`, `client_secret`), then run `l3map auth login --connection {conn}`; see https://developer.zendesk.com/documentation/api-basics/authentication/oauth-migration/")
    )]
    ApiTokenRetired { conn: String },
    /// Returned when a property is given a value of the wrong form.
    #[error("`{key}` expects {expected}")]
    #[diagnostic(code(l3map::connection::value), help("{help}"))]
    BadPropertyValue {
        key: String,
        expected: String,
        help: String,
    },
    /// Returned when a single-valued property is given several values.
    #[error("`{key}` takes one value")]
    #[diagnostic(code(l3map::connection::values), help("write `{example}`"))]
    TooManyValues { key: String, example: String },
    /// Returned when a credential is written inline instead of by reference.
    #[error("`{key}` is a credential and must not be written in the file")]
    #[diagnostic(
        code(l3map::connection::literal_secret),
        help("reference it instead: `{key} env(\"{suggested_env}\")` or `{key} file(\"/run/secrets/{key}\")`, and rotate the value that was committed")
    )]
    LiteralSecret { key: String, suggested_env: String },
    /// Returned when a scope is not one the service defines.
    #[error("unknown {kind} scope `{scope}`")]
    #[diagnostic(code(l3map::scope::unknown))]
    UnknownScope {
        kind: String,
        scope: String,
        #[help]
        help: Option<String>,
    },
    /// Returned when a scope grants far more than the integration needs.
    #[error("scope `{scope}` is broader than l3map needs")]
    #[diagnostic(code(l3map::scope::too_broad), severity(Warning), help("{help}"))]
    BroadScope { scope: String, help: String },
    /// Returned when a write scope is requested but nothing writes.
    #[error("scope `{scope}` is requested but nothing in the project {needs_it}")]
    #[diagnostic(
        code(l3map::scope::unused),
        severity(Warning),
        help("remove `{scope}`: an integration should hold only the scopes it uses")
    )]
    UnusedScope { scope: String, needs_it: String },
    /// Returned when the project does something its connection may not.
    #[error("`{conn}` lacks scope `{scope}`, needed because {because}")]
    #[diagnostic(code(l3map::scope::missing), help("{help}"))]
    MissingScope {
        conn: String,
        scope: &'static str,
        because: String,
        help: String,
        #[label("needs `{scope}`")]
        use_site: Option<Span>,
    },
    /// Returned when a Salesforce connection cannot refresh its session.
    #[error("`{conn}` cannot stay signed in: {scope} missing")]
    #[diagnostic(
        code(l3map::scope::offline),
        severity(Warning),
        help("`l3map run` refreshes the Salesforce session unattended with a refresh token; add `refresh_token` (or its other name, `offline_access`: one is enough) to the scopes")
    )]
    NoOfflineScope { conn: String, scope: String },
    /// A record link mistake (`link.rs`).
    #[error(transparent)]
    #[diagnostic(transparent)]
    Link(#[from] super::link::LinkErrorKind),
    /// A ticket form mistake (`form.rs`).
    #[error(transparent)]
    #[diagnostic(transparent)]
    Form(#[from] super::form::FormErrorKind),
    /// Returned when a Salesforce object is used but not declared.
    #[error("Salesforce object `{object}` is not in the `objects` of `{conn}`")]
    #[diagnostic(
        code(l3map::salesforce::object),
        help("add `{object}` to `objects` so the integration user's permission set can be scoped to it")
    )]
    UndeclaredObject { object: String, conn: String },
    /// Returned when a condition orders an amount whose currency comes
    /// with the event (`turn.refund_amount`) only against thresholds in
    /// some of the currencies the connections declare.
    #[error(
        "`{path}` is compared only with amounts in {covered}, but `{conn}` deals in {missing} too"
    )]
    #[diagnostic(
        code(l3map::money::uncovered_currency),
        severity(Warning),
        help("l3map never converts currencies: an amount in {missing} cannot be held against this threshold, so the rule is refused for a person to decide. Give each currency its own threshold, e.g. `({path} > … {covered} or {path} > … {missing_one})`, or remove the currency from `currencies`")
    )]
    UncoveredCurrency {
        path: String,
        covered: String,
        missing: String,
        missing_one: String,
        conn: String,
        #[label("`{conn}` declares its currencies here")]
        declared: Option<Span>,
    },
    /// Returned when `and` joins orderings of one event-currency amount
    /// against thresholds in different currencies: an amount has one
    /// currency, so one of the two is always undecided and the rule can
    /// never hold for any currency.
    #[error(
        "`{path}` is held against thresholds in {currencies} at once, but an amount has one currency: this condition never holds"
    )]
    #[diagnostic(
        code(l3map::money::never_both),
        severity(Warning),
        help("give each currency its own threshold and join them with `or`: `({path} > … {first} or {path} > … {second})`")
    )]
    NeverBoth {
        path: String,
        currencies: String,
        first: String,
        second: String,
    },
    /// Returned when a Salesforce object is declared but never used.
    #[error("Salesforce object `{object}` is declared but never used")]
    #[diagnostic(
        code(l3map::salesforce::unused_object),
        severity(Warning),
        help("remove it from `objects`: least privilege means the integration user only sees what it uses")
    )]
    UnusedObject { object: String },
    /// Returned when an item is declared and never used.
    #[error("{kind} `{name}` is never used")]
    #[diagnostic(code(l3map::unused), severity(Warning), help("{help}"))]
    Unused {
        kind: &'static str,
        name: String,
        help: String,
    },

    // ------------------------------------------------------------ statuses
    /// Returned when a status category is not one of Zendesk's five.
    #[error("unknown status category `{category}`")]
    #[diagnostic(code(l3map::status::category))]
    UnknownCategory {
        category: String,
        #[help]
        help: Option<String>,
    },
    /// Returned when a transition leads back to a `new`-category status.
    #[error("transition into `{status}`, a status of category `new`")]
    #[diagnostic(
        code(l3map::status::back_to_new),
        help("Zendesk never lets a ticket return to a `new` status once it has left it; target an `open` status instead")
    )]
    TransitionToNew { status: String },
    /// Returned when a transition leaves a terminal status.
    #[error("transition out of terminal status `{status}`")]
    #[diagnostic(
        code(l3map::status::from_terminal),
        help("a terminal status has no way out; remove the transition or drop `terminal` from `{status}`")
    )]
    TransitionFromTerminal {
        status: String,
        #[label("declared terminal here")]
        decl: Span,
    },
    /// Returned when the same transition is declared twice.
    #[error("transition `{from} -> {to}` is declared twice")]
    #[diagnostic(
        code(l3map::status::duplicate_transition),
        severity(Warning),
        help("remove one; if both conditions matter, join them with `or`")
    )]
    DuplicateTransition {
        from: String,
        to: String,
        #[label("first here")]
        first: Span,
    },
    /// Returned when a conditional transition is already allowed without condition.
    #[error("the condition on `{from} -> {to}` never matters")]
    #[diagnostic(
        code(l3map::status::shadowed_transition),
        severity(Warning),
        help("`{from} -> {to}` is already allowed unconditionally; remove one of the two")
    )]
    ShadowedTransition {
        from: String,
        to: String,
        #[label("allowed unconditionally here")]
        by: Span,
    },
    /// Returned when a status transitions to itself.
    #[error("`{status} -> {status}` does not change anything")]
    #[diagnostic(
        code(l3map::status::self_transition),
        severity(Warning),
        help("remove it")
    )]
    SelfTransition { status: String },
    /// Returned when two or more Zendesk statuses of one category have no
    /// custom status id.
    #[error("{statuses} are `{category}` statuses without a custom status id: Zendesk cannot tell them apart")]
    #[diagnostic(
        code(l3map::status::indistinct),
        severity(Warning),
        help("give `{status}` its Zendesk custom status id, `{status} ... #ID` (Zendesk's Admin Center lists them under ticket statuses; `l3map schema pull` records them in l3map.lock.json); one status of a category may go without, as the category's default, but a second one would be written and read as that same default status")
    )]
    IndistinctStatuses {
        category: String,
        statuses: String,
        status: String,
    },
    /// Returned when no path leads into a status.
    #[error("status `{status}` can never be reached")]
    #[diagnostic(
        code(l3map::status::unreachable),
        severity(Warning),
        help("no transition chain from a `new` (or `initial`) status leads here; add a transition into `{status}`, or mark it `initial` if tickets are created in it")
    )]
    Unreachable { status: String },
    /// Returned when a non-terminal status has no way out.
    #[error("status `{status}` is a dead end")]
    #[diagnostic(
        code(l3map::status::dead_end),
        severity(Warning),
        help("add a transition out of `{status}`, or mark it `terminal` if tickets are meant to stay there")
    )]
    DeadEnd { status: String },
    /// Returned when a table ignores Zendesk's reopen-on-reply rule.
    #[error("Zendesk reopens `{status}` when the requester replies, but the table has no way from it to an open status")]
    #[diagnostic(
        code(l3map::status::reopen),
        severity(Warning),
        help("declare it so the agent expects it: `{status} -> {open} when comment.author == end_user`")
    )]
    MissingReopen {
        status: String,
        open: String,
        category: String,
    },

    // ------------------------------------------------------------ fields and types
    /// Returned when a type name is unknown.
    #[error("unknown type `{name}`")]
    #[diagnostic(code(l3map::types::unknown))]
    UnknownType {
        name: String,
        #[help]
        help: Option<String>,
    },
    /// Returned when a type is given the wrong arguments.
    #[error("{message}")]
    #[diagnostic(code(l3map::types::arguments), help("{help}"))]
    BadTypeArgs { message: String, help: String },
    /// Returned when a field declaration has the wrong shape for its connection.
    #[error("{message}")]
    #[diagnostic(code(l3map::field::shape), help("{help}"))]
    BadFieldDecl { message: String, help: String },
    /// Returned when a value or expression has the wrong type.
    #[error("type mismatch: {message}")]
    #[diagnostic(code(l3map::types::mismatch))]
    TypeMismatch {
        message: String,
        found: String,
        #[help]
        help: Option<String>,
    },
    /// Returned when a translation table does not cover every source value.
    #[error("translation of `{source_field}` is not exhaustive: {missing} not covered")]
    #[diagnostic(
        code(l3map::map::not_exhaustive),
        help("add arms for them or a default arm `_ => ...` at the end")
    )]
    NotExhaustive {
        source_field: String,
        missing: String,
    },
    /// Returned when a translation arm can never be chosen.
    #[error("this arm can never be chosen")]
    #[diagnostic(code(l3map::map::unreachable_arm), severity(Warning), help("{help}"))]
    UnreachableArm { help: String },
    /// Returned when two mapping rules write the same field.
    #[error("`{field}` is written by two mapping rules")]
    #[diagnostic(
        code(l3map::map::conflict),
        help("keep one rule per target field; the runtime could not tell which value wins")
    )]
    ConflictingWrite {
        field: String,
        #[label("first writer")]
        first: Option<Span>,
    },
    /// Returned when a mapping goes between two connections of the same kind.
    #[error("a mapping needs one Salesforce and one Zendesk side")]
    #[diagnostic(
        code(l3map::map::sides),
        help("write `map crm -> desk {{ ... }}` (Salesforce to Zendesk) or `map desk -> crm {{ ... }}`")
    )]
    MapSides { kind: String },

    // ------------------------------------------------------------ expressions
    /// Returned when a name is not one of the values of an enum.
    #[error("`{name}` is not one of {of}")]
    #[diagnostic(code(l3map::types::unknown_value))]
    UnknownValue {
        name: String,
        of: String,
        #[help]
        help: Option<String>,
    },
    /// Returned when a status is set on a connection without a status table.
    #[error("`{conn}` has no status table")]
    #[diagnostic(
        code(l3map::status::no_table),
        help("declare its statuses first: `statuses {conn} {{ open open \"Open\" ... }}`")
    )]
    NoStatusTable { conn: String },
    /// Returned when a condition is not a yes/no question.
    #[error("a condition must be true or false, but this is {found}")]
    #[diagnostic(
        code(l3map::expr::not_bool),
        help("compare it with something, e.g. `{example}`")
    )]
    NotBool { found: String, example: String },
    /// Returned when a bare name appears where its meaning cannot be known.
    #[error("`{name}` is not a value here")]
    #[diagnostic(
        code(l3map::expr::bare_name),
        help(
            "quote it if it is text (\"{name}\"), or compare it with a field whose type lists it"
        )
    )]
    BareName { name: String },

    // ------------------------------------------------------------ sku
    /// Returned when an alias normalises to nothing.
    #[error("alias {alias:?} is empty after normalisation")]
    #[diagnostic(
        code(l3map::sku::empty_alias),
        help("the `normalize` steps remove every character of it, so it could never match; remove it or change the steps")
    )]
    EmptyAlias { alias: String },
    /// Returned when a SKU regex does not compile.
    #[error("invalid regex: {message}")]
    #[diagnostic(
        code(l3map::sku::regex),
        help("l3map uses Rust regex syntax (https://docs.rs/regex); escape `/` as `\\/`")
    )]
    BadRegex { message: String },
    /// Returned when a SKU rule can never fire because earlier rules take all its inputs.
    #[error("this rule never fires: {by} matches every input it does")]
    #[diagnostic(
        code(l3map::sku::shadowed),
        help("move it before the broader rule, or remove it")
    )]
    ShadowedSkuRule {
        by: String,
        #[label("matches first")]
        first: Span,
    },
    /// Returned when two aliases, or an alias and a pattern, claim one input for different products.
    #[error("ambiguous SKU rules: {input:?} is claimed by both")]
    #[diagnostic(code(l3map::sku::ambiguous), help("{help}"))]
    AmbiguousSku {
        input: String,
        help: String,
        this: String,
        #[label("gives {other}")]
        other_span: Span,
        other: String,
    },
    /// Returned when two regex rules overlap with different results (first wins).
    #[error("overlapping SKU patterns: {input:?} matches both")]
    #[diagnostic(
        code(l3map::sku::overlap),
        severity(Warning),
        help("the first rule wins; make the patterns disjoint or add an alias for the overlap")
    )]
    OverlappingSku {
        input: String,
        #[label("wins")]
        first: Span,
    },
    /// Returned when a SKU target uses a capture group the regex lacks.
    #[error("`${group}` refers to a capture group the pattern does not have")]
    #[diagnostic(
        code(l3map::sku::capture),
        help("the pattern has {groups} capture group(s); number them from $1")
    )]
    BadCapture { group: String, groups: usize },
    /// Returned when a SKU test vector does not hold.
    #[error("SKU test failed: {input:?} gives {got}, expected {expected}")]
    #[diagnostic(code(l3map::sku::test), help("{help}"))]
    SkuTestFailed {
        input: String,
        got: String,
        expected: String,
        help: String,
    },
    /// Returned when a declared product no rule produces.
    #[error("product `{product}` is declared but no rule produces it")]
    #[diagnostic(
        code(l3map::sku::unreached_product),
        severity(Warning),
        help("add an alias for it, or remove it from `products`")
    )]
    UnreachedProduct { product: String },

    // ------------------------------------------------------------ templates and escalations
    /// Returned when a template filter is unknown or misused.
    #[error("{message}")]
    #[diagnostic(code(l3map::template::filter), help("{help}"))]
    BadFilter { message: String, help: String },
    /// Returned when an escalation statement is missing or repeated.
    #[error("{message}")]
    #[diagnostic(code(l3map::escalation::shape), help("{help}"))]
    EscalationShape {
        message: String,
        help: String,
        #[label("first here")]
        first: Option<Span>,
    },
    /// Returned when an escalation hands off but does nothing.
    #[error("escalation `{name}` writes nothing on hand-off")]
    #[diagnostic(
        code(l3map::escalation::empty),
        severity(Warning),
        help("a human needs the context: add `comment CONN TEMPLATE` (and a status or group)")
    )]
    EmptyEscalation { name: String },

    // ------------------------------------------------------------ tests
    /// Returned when a test block has no event, two events, or no expectation.
    #[error("{message}")]
    #[diagnostic(code(l3map::test::shape), help("{help}"))]
    TestShape {
        message: String,
        help: String,
        #[label("first here")]
        first: Option<Span>,
    },
    /// Returned when a test's event is not a valid event (docs/EVENTS.md).
    #[error("the test event is not valid: {message}")]
    #[diagnostic(
        code(l3map::test::event),
        help("events are JSON as described in docs/EVENTS.md; `id` and `at` may be left out")
    )]
    TestEvent { message: String },
    /// Returned when a test's event carries a key nothing reads: the test
    /// could not fail on it (a mistyped custom field id, a misspelt field).
    #[error("{message}")]
    #[diagnostic(code(l3map::test::unknown_key), help("{help}"))]
    TestEventKey { message: String, help: String },
    /// Returned when a test's event names a status the project cannot
    /// see in a real event: the test would fail (or pass) on a typo.
    #[error("{message}")]
    #[diagnostic(code(l3map::test::unknown_status), help("{help}"))]
    TestEventStatus {
        message: String,
        help: String,
        label: String,
    },

    /// Returned when a test's event gives a declared custom field a value
    /// its type cannot hold (a tag not in the enum, a number that is not
    /// one): the rules would read a value no real ticket carries.
    #[error("{message}")]
    #[diagnostic(code(l3map::test::field_value), help("{help}"))]
    TestEventValue {
        message: String,
        help: String,
        label: String,
    },

    // ------------------------------------------------------------ schema lockfile
    /// Returned when a declared id or name is not in the instance (per the lockfile).
    #[error("{what} is not in the {system} instance")]
    #[diagnostic(code(l3map::schema::not_in_instance), help("{help}"))]
    NotInInstance {
        what: String,
        system: &'static str,
        help: String,
    },
    /// Returned when an enum value has no matching drop-down option or picklist value.
    #[error("`{value}` is not an option of {field} in the {system} instance")]
    #[diagnostic(code(l3map::schema::not_an_option), help("{help}"))]
    NotAnOption {
        value: String,
        field: String,
        system: &'static str,
        help: String,
    },
    /// Returned when the mappings write a field the integration user may not update.
    #[error("`{field}` is not updateable by the integration user")]
    #[diagnostic(
        code(l3map::schema::not_updateable),
        help("ask the Salesforce admin for edit access to the field (field-level security), or do not write it")
    )]
    NotUpdateable { field: String },
    /// Returned when the lockfile has nothing for a connection the project uses.
    #[error("l3map.lock.json has no schema for connection `{conn}`")]
    #[diagnostic(
        code(l3map::schema::not_locked),
        severity(Warning),
        help("run `l3map schema pull --connection {conn}` to record it")
    )]
    NotLocked { conn: String },
}
