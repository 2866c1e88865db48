//! Filtering (AIP-160) and ordering (AIP-132) of the resource List methods.
//!
//! A `filter` string is lexed, parsed by recursive descent into an [`Expr`], then
//! checked against the [`Schema`] of the list (every field known, every literal of the
//! field's type, every operator meaningful for it) into a typed condition, which is
//! compiled to SQL. The SQL consists only of `&'static str` fragments written in this
//! module or in a schema, and `$n` placeholders: every literal of the input is a bound
//! parameter, and no text of the input is ever part of the SQL.
//!
//! # Grammar
//!
//! ```text
//! filter      = [ expression ]
//! expression  = sequence { "AND" sequence }
//! sequence    = factor { factor }                 (juxtaposition is AND)
//! factor      = term { "OR" term }                (OR binds tighter than AND)
//! term        = [ "NOT" | "-" ] simple
//! simple      = restriction | "(" expression ")"
//! restriction = field [ "." key ] comparator value
//! comparator  = "=" | "!=" | "<" | "<=" | ">" | ">=" | ":"
//! value       = "double-quoted" | 'single-quoted' | bare-word
//! ```
//!
//! As in AIP-160, `OR` binds tighter than `AND`: `a = 1 AND b = 2 OR c = 3` means
//! `a = 1 AND (b = 2 OR c = 3)`. `AND`, `OR` and `NOT` are keywords in upper case only.
//! Strings take the escapes `\"`, `\'`, `\\`, `\*`, `\n`, `\r` and `\t`. A bare word is
//! any run of characters other than white space and `( ) " ' = ! < > :`; timestamps,
//! which contain `:`, must be quoted.
//!
//! # Semantics, by field type
//!
//! - **String**: `=` and `!=` compare exactly (case-sensitive); a `*` in the value is a
//!   wildcard for any run of characters (`title = "Chong*"`; write `\*` for a literal
//!   star), so `=` then matches a pattern. `<`, `<=`, `>`, `>=` compare in code-point
//!   order. `:` ("has") is a case-insensitive substring match (`title:"trade"`).
//!   `field:*` is true when the field is not empty. Absent optional strings are empty.
//! - **Enum**: `=`, `!=` and `:` (the same as `=`) with the value's name, either the
//!   full proto name (`STATE_ACTIVE`) or without its prefix (`ACTIVE`), in any case.
//! - **Integer**, **Decimal**, **Date** (`YYYY-MM-DD`), **Timestamp** (RFC 3339, quoted;
//!   or a date, meaning its midnight UTC): every comparison; `:` is `=`. A comparison with
//!   an absent optional value (a date or decimal that is not set) is false, except `!=`,
//!   which is true; `field:*` is true when the value is set.
//! - **Bool**: `=`, `!=`, `:` with `true` or `false`.
//! - **Repeated string** (`tags`): `tags:"x"` is true when `x` is one of the elements;
//!   `tags:*` when there is at least one.
//! - **Map** (`dimensions`): `dimensions.KEY` is a string field (absent when the key
//!   is); `dimensions:KEY` is true when the key is present; `dimensions:*` when the map
//!   is not empty.
//!
//! # Ordering
//!
//! `order_by` is a comma-separated list of orderable fields, each optionally followed by
//! `desc` (or `asc`, the default): `"start_year desc, title"`. Absent values sort after
//! every value in ascending order and before them in descending order. The resource id
//! is always the last key, so the order is total. Pagination is keyset pagination on
//! the order keys: a page token carries the keys of the last row returned.

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use sqlx::postgres::PgRow;
use sqlx::{Postgres, QueryBuilder};

use crate::domain::{Invalid, Violations};
use crate::error::Error;

/// Longest accepted `filter`, in bytes.
pub const MAX_FILTER_LEN: usize = 2_000;
/// Deepest accepted nesting of parentheses in a `filter`.
pub const MAX_DEPTH: usize = 32;
/// Longest accepted `order_by`, in bytes.
pub const MAX_ORDER_BY_LEN: usize = 500;

// ---------------------------------------------------------------------------------------
// Schemas

/// The values of an enum field: proto names and the codes stored for them.
#[derive(Debug)]
pub struct EnumType {
    /// Prefix of the proto names (`STATE_`), which callers may leave out.
    pub prefix: &'static str,
    /// Proto name → stored code.
    pub values: &'static [(&'static str, &'static str)],
}

/// Type of a filterable field.
#[derive(Debug, Clone, Copy)]
pub enum FieldType {
    /// Text.
    String,
    /// One of a closed set of names.
    Enum(&'static EnumType),
    /// A whole number.
    Integer,
    /// An exact decimal (`numeric`).
    Decimal,
    /// A calendar date.
    Date,
    /// An instant.
    Timestamp,
    /// True or false.
    Bool,
    /// A `text[]`: `:` tests membership.
    StringList,
    /// A `jsonb` object of strings: `field.key` is a string.
    Map,
}

impl FieldType {
    fn describe(self) -> &'static str {
        match self {
            FieldType::String => "a string",
            FieldType::Enum(_) => "an enum",
            FieldType::Integer => "an integer",
            FieldType::Decimal => "a decimal",
            FieldType::Date => "a date",
            FieldType::Timestamp => "a timestamp",
            FieldType::Bool => "a bool",
            FieldType::StringList => "a repeated string",
            FieldType::Map => "a map",
        }
    }

    /// The cast that turns a bound text into a value of the type (for page keys).
    fn cast(self) -> &'static str {
        match self {
            FieldType::Integer => "::integer",
            FieldType::Decimal => "::numeric",
            FieldType::Date => "::date",
            FieldType::Timestamp => "::timestamptz",
            _ => "::text",
        }
    }
}

/// One field of a list's schema. The SQL expressions are written by us, never taken
/// from a request.
#[derive(Debug)]
pub struct Field {
    /// Name in filters and `order_by`: the proto field name.
    pub name: &'static str,
    /// SQL expression of the value, as filters see it.
    pub sql: &'static str,
    /// Its type.
    pub ty: FieldType,
    /// True when `sql` may be NULL (an optional date or decimal).
    pub nullable: bool,
    /// SQL expression to sort on (with its collation), or `None` when the field cannot be
    /// used in `order_by`.
    pub sort: Option<&'static str>,
}

impl Field {
    /// A filterable field, not orderable, never NULL.
    pub const fn new(name: &'static str, sql: &'static str, ty: FieldType) -> Self {
        Self {
            name,
            sql,
            ty,
            nullable: false,
            sort: None,
        }
    }

    /// The field sorts on `sort`.
    pub const fn orderable(self, sort: &'static str) -> Self {
        Self {
            sort: Some(sort),
            ..self
        }
    }

    /// The field's SQL may be NULL.
    pub const fn nullable(self) -> Self {
        Self {
            nullable: true,
            ..self
        }
    }
}

/// The filterable and orderable fields of one List method.
#[derive(Debug)]
pub struct Schema {
    /// The fields.
    pub fields: &'static [Field],
    /// SQL of the resource id (text, unique within the list): the last sort key.
    pub id_sort: &'static str,
}

impl Schema {
    fn field(&self, name: &str) -> Option<&'static Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    fn filterable(&self) -> String {
        self.fields
            .iter()
            .map(|f| f.name)
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn orderable(&self) -> String {
        self.fields
            .iter()
            .filter(|f| f.sort.is_some())
            .map(|f| f.name)
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Every SQL expression of the schema (for the allow-list checks of the tests).
    pub fn expressions(&self) -> Vec<&'static str> {
        let mut out = vec![self.id_sort];
        for f in self.fields {
            out.push(f.sql);
            out.extend(f.sort);
        }
        out
    }
}

// ---------------------------------------------------------------------------------------
// Lexer

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `=`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `:` (has)
    Has,
}

impl Op {
    fn text(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Has => ":",
        }
    }

    fn sql(self) -> &'static str {
        match self {
            Op::Eq | Op::Has => " = ",
            Op::Ne => " <> ",
            Op::Lt => " < ",
            Op::Le => " <= ",
            Op::Gt => " > ",
            Op::Ge => " >= ",
        }
    }
}

/// A literal: a quoted string or a bare word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lit {
    /// The text, escapes resolved.
    pub text: String,
    /// Byte offsets in `text` of the `*` that are wildcards (not escaped).
    pub stars: Vec<usize>,
    /// True for a quoted string.
    pub quoted: bool,
}

impl Lit {
    fn is_keyword(&self, k: &str) -> bool {
        !self.quoted && self.text == k
    }

    fn is_lone_star(&self) -> bool {
        self.text == "*" && self.stars == [0]
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    LParen,
    RParen,
    Op(Op),
    Minus,
    Text(Lit),
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    /// Byte offset in the input.
    pos: usize,
}

/// 1-based character position of byte offset `byte` of `src`.
fn at(src: &str, byte: usize) -> usize {
    src.get(..byte).map(|s| s.chars().count()).unwrap_or(0) + 1
}

/// A piece of the input, quoted and shortened, for messages.
fn show(s: &str) -> String {
    const MAX: usize = 40;
    if s.chars().count() <= MAX {
        format!("{s:?}")
    } else {
        let head: String = s.chars().take(MAX).collect();
        format!("{head:?}…")
    }
}

fn syntax(message: String) -> Invalid {
    Invalid::new("INVALID_FILTER", message)
}

fn is_word_char(c: char) -> bool {
    !c.is_whitespace() && !matches!(c, '(' | ')' | '"' | '\'' | '=' | '!' | '<' | '>' | ':')
}

fn lex(src: &str) -> Result<Vec<Token>, Invalid> {
    let mut out: Vec<Token> = Vec::new();
    let mut it = src.char_indices().peekable();
    while let Some(&(pos, c)) = it.peek() {
        if c.is_whitespace() {
            it.next();
            continue;
        }
        let simple = |tok| Token { tok, pos };
        match c {
            '(' => {
                it.next();
                out.push(simple(Tok::LParen));
            }
            ')' => {
                it.next();
                out.push(simple(Tok::RParen));
            }
            '=' | ':' => {
                it.next();
                out.push(simple(Tok::Op(if c == '=' { Op::Eq } else { Op::Has })));
            }
            '<' | '>' | '!' => {
                it.next();
                let eq = matches!(it.peek(), Some(&(_, '=')));
                if eq {
                    it.next();
                }
                let op = match (c, eq) {
                    ('<', false) => Op::Lt,
                    ('<', true) => Op::Le,
                    ('>', false) => Op::Gt,
                    ('>', true) => Op::Ge,
                    ('!', true) => Op::Ne,
                    _ => {
                        return Err(syntax(format!(
                            "unexpected \"!\" at {}; the not-equal operator is !=, negation is NOT or -",
                            at(src, pos)
                        )));
                    }
                };
                out.push(simple(Tok::Op(op)));
            }
            '"' | '\'' => {
                it.next();
                let quote = c;
                let mut text = String::new();
                let mut stars = Vec::new();
                let mut closed = false;
                while let Some((epos, ch)) = it.next() {
                    match ch {
                        _ if ch == quote => {
                            closed = true;
                            break;
                        }
                        '\\' => match it.next() {
                            Some((_, e @ ('"' | '\'' | '\\' | '*'))) => text.push(e),
                            Some((_, 'n')) => text.push('\n'),
                            Some((_, 'r')) => text.push('\r'),
                            Some((_, 't')) => text.push('\t'),
                            Some((_, other)) => {
                                return Err(syntax(format!(
                                    "unknown escape \\{other} at {}; strings take \\\" \\' \\\\ \\* \\n \\r \\t",
                                    at(src, epos)
                                )));
                            }
                            None => break,
                        },
                        '*' => {
                            stars.push(text.len());
                            text.push('*');
                        }
                        _ => text.push(ch),
                    }
                }
                if !closed {
                    return Err(syntax(format!(
                        "unterminated string starting at {}",
                        at(src, pos)
                    )));
                }
                out.push(simple(Tok::Text(Lit {
                    text,
                    stars,
                    quoted: true,
                })));
            }
            '-' if !matches!(
                out.last(),
                Some(Token {
                    tok: Tok::Op(_),
                    ..
                })
            ) =>
            {
                // Negation, unless it starts a value (`start_year > -5`).
                it.next();
                out.push(simple(Tok::Minus));
            }
            _ => {
                let mut text = String::new();
                while let Some(&(_, ch)) = it.peek() {
                    if !is_word_char(ch) {
                        break;
                    }
                    text.push(ch);
                    it.next();
                }
                let stars = text
                    .char_indices()
                    .filter(|&(_, ch)| ch == '*')
                    .map(|(i, _)| i)
                    .collect();
                out.push(simple(Tok::Text(Lit {
                    text,
                    stars,
                    quoted: false,
                })));
            }
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// Parser

/// A parsed filter, before it is checked against a schema.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// Every operand holds.
    And(Vec<Expr>),
    /// At least one operand holds.
    Or(Vec<Expr>),
    /// The operand does not hold.
    Not(Box<Expr>),
    /// `field[.key] op value`.
    Restriction {
        /// Field name.
        field: String,
        /// Map key after a `.`, if any.
        key: Option<String>,
        /// Comparator.
        op: Op,
        /// Value.
        value: Lit,
        /// Byte offset of the field name.
        field_pos: usize,
        /// Byte offset of the value.
        value_pos: usize,
    },
}

struct Parser<'a> {
    src: &'a str,
    toks: Vec<Token>,
    i: usize,
    depth: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.toks.get(self.i)
    }

    fn peek_keyword(&self, k: &str) -> bool {
        matches!(self.peek(), Some(Token { tok: Tok::Text(l), .. }) if l.is_keyword(k))
    }

    fn here(&self) -> usize {
        at(
            self.src,
            self.peek().map(|t| t.pos).unwrap_or(self.src.len()),
        )
    }

    /// Describes the next token, for messages.
    fn found(&self) -> String {
        match self.peek() {
            None => "the end of the filter".to_owned(),
            Some(t) => match &t.tok {
                Tok::LParen => "\"(\"".to_owned(),
                Tok::RParen => "\")\"".to_owned(),
                Tok::Minus => "\"-\"".to_owned(),
                Tok::Op(op) => format!("{:?}", op.text()),
                Tok::Text(l) if l.quoted => format!("the string {}", show(&l.text)),
                Tok::Text(l) => show(&l.text),
            },
        }
    }

    fn unexpected(&self, expected: &str) -> Invalid {
        syntax(format!(
            "expected {expected} at {}, found {}",
            self.here(),
            self.found()
        ))
    }

    fn expression(&mut self) -> Result<Expr, Invalid> {
        let mut items = vec![self.sequence()?];
        while self.peek_keyword("AND") {
            self.i += 1;
            items.push(self.sequence()?);
        }
        Ok(join(items, Expr::And))
    }

    fn starts_term(&self) -> bool {
        match self.peek() {
            Some(Token {
                tok: Tok::LParen | Tok::Minus,
                ..
            }) => true,
            Some(Token {
                tok: Tok::Text(l), ..
            }) => !(l.is_keyword("AND") || l.is_keyword("OR")),
            _ => false,
        }
    }

    fn sequence(&mut self) -> Result<Expr, Invalid> {
        let mut items = vec![self.factor()?];
        while self.starts_term() {
            items.push(self.factor()?);
        }
        Ok(join(items, Expr::And))
    }

    fn factor(&mut self) -> Result<Expr, Invalid> {
        let mut items = vec![self.term()?];
        while self.peek_keyword("OR") {
            self.i += 1;
            items.push(self.term()?);
        }
        Ok(join(items, Expr::Or))
    }

    fn term(&mut self) -> Result<Expr, Invalid> {
        let negated = if self.peek_keyword("NOT") {
            true
        } else {
            matches!(
                self.peek(),
                Some(Token {
                    tok: Tok::Minus,
                    ..
                })
            )
        };
        if negated {
            self.i += 1;
            return Ok(Expr::Not(Box::new(self.simple()?)));
        }
        self.simple()
    }

    fn simple(&mut self) -> Result<Expr, Invalid> {
        let Some(token) = self.peek().cloned() else {
            return Err(self.unexpected("a restriction (field operator value)"));
        };
        match token.tok {
            Tok::LParen => {
                if self.depth >= MAX_DEPTH {
                    return Err(Invalid::new(
                        "FILTER_TOO_DEEP",
                        format!(
                            "parentheses nest deeper than {MAX_DEPTH} levels at {}",
                            self.here()
                        ),
                    ));
                }
                self.depth += 1;
                self.i += 1;
                if matches!(
                    self.peek(),
                    Some(Token {
                        tok: Tok::RParen,
                        ..
                    })
                ) {
                    return Err(syntax(format!(
                        "empty parentheses at {}",
                        at(self.src, token.pos)
                    )));
                }
                let inner = self.expression()?;
                if !matches!(
                    self.peek(),
                    Some(Token {
                        tok: Tok::RParen,
                        ..
                    })
                ) {
                    return Err(syntax(format!(
                        "expected \")\" at {} to close the \"(\" at {}, found {}",
                        self.here(),
                        at(self.src, token.pos),
                        self.found()
                    )));
                }
                self.i += 1;
                self.depth -= 1;
                Ok(inner)
            }
            Tok::Text(ref l)
                if l.is_keyword("AND") || l.is_keyword("OR") || l.is_keyword("NOT") =>
            {
                Err(self.unexpected("a restriction (field operator value)"))
            }
            Tok::Text(ref l) if l.quoted => Err(syntax(format!(
                "expected a field name at {}, found the string {}; searching by a bare value is \
                 not supported: name a field, e.g. title:{}",
                self.here(),
                show(&l.text),
                show(&l.text)
            ))),
            Tok::Text(l) => {
                self.i += 1;
                self.restriction(l, token.pos)
            }
            _ => Err(self.unexpected("a restriction (field operator value)")),
        }
    }

    fn restriction(&mut self, name: Lit, field_pos: usize) -> Result<Expr, Invalid> {
        let op = match self.peek() {
            Some(Token {
                tok: Tok::Op(op), ..
            }) => *op,
            _ => {
                return Err(syntax(format!(
                    "expected a comparison operator (= != < <= > >= :) after {} at {}, found {}; \
                     a bare value is not a restriction",
                    show(&name.text),
                    self.here(),
                    self.found()
                )));
            }
        };
        self.i += 1;
        let (value, value_pos) = match self.peek() {
            Some(Token {
                tok: Tok::Text(l),
                pos,
            }) if !(l.is_keyword("AND") || l.is_keyword("OR") || l.is_keyword("NOT")) => {
                (l.clone(), *pos)
            }
            Some(Token {
                tok: Tok::Text(_), ..
            }) => {
                return Err(syntax(format!(
                    "expected a value after {} at {}, found the keyword {}; quote it to use it as text",
                    op.text(),
                    self.here(),
                    self.found()
                )));
            }
            _ => return Err(self.unexpected(&format!("a value after {}", op.text()))),
        };
        self.i += 1;
        let (field, key) = match name.text.split_once('.') {
            Some((f, k)) => (f.to_owned(), Some(k.to_owned())),
            None => (name.text, None),
        };
        Ok(Expr::Restriction {
            field,
            key,
            op,
            value,
            field_pos,
            value_pos,
        })
    }
}

fn join(mut items: Vec<Expr>, make: fn(Vec<Expr>) -> Expr) -> Expr {
    if items.len() == 1 {
        items.pop().unwrap_or_else(|| unreachable!("one item"))
    } else {
        make(items)
    }
}

/// Parses `src` into an expression (`None` for an empty filter), without a schema.
pub fn parse(src: &str) -> Result<Option<Expr>, Invalid> {
    if src.len() > MAX_FILTER_LEN {
        return Err(Invalid::new(
            "FILTER_TOO_LONG",
            format!(
                "the filter is {} bytes long; at most {MAX_FILTER_LEN} are accepted",
                src.len()
            ),
        ));
    }
    if let Some(pos) = src.find('\0') {
        return Err(syntax(format!(
            "the filter contains a NUL character at {}",
            at(src, pos)
        )));
    }
    let toks = lex(src)?;
    if toks.is_empty() {
        return Ok(None);
    }
    let mut p = Parser {
        src,
        toks,
        i: 0,
        depth: 0,
    };
    let e = p.expression()?;
    if p.i < p.toks.len() {
        return Err(p.unexpected("AND, OR or the end of the filter"));
    }
    Ok(Some(e))
}

// ---------------------------------------------------------------------------------------
// Type checking

/// A value bound as a query parameter.
#[derive(Debug, Clone, PartialEq)]
pub enum Bound {
    /// `text`
    Text(String),
    /// `bigint`
    Int(i64),
    /// `text`, cast to `numeric`
    Numeric(String),
    /// `date`
    Date(NaiveDate),
    /// `timestamptz`
    Time(DateTime<Utc>),
    /// `boolean`
    Bool(bool),
}

#[derive(Debug, Clone, PartialEq)]
enum Operand {
    Column(&'static str),
    /// `(map ->> key)`
    MapValue(&'static str, String),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Presence {
    NotEmpty,
    NotNull,
    NonEmptyArray,
    NonEmptyMap,
}

/// A checked, typed condition.
#[derive(Debug, Clone, PartialEq)]
enum Cond {
    And(Vec<Cond>),
    Or(Vec<Cond>),
    Not(Box<Cond>),
    Compare {
        operand: Operand,
        op: Op,
        value: Bound,
        collate: bool,
        nullable: bool,
    },
    Like {
        operand: Operand,
        pattern: String,
        negate: bool,
        insensitive: bool,
        nullable: bool,
    },
    Present {
        operand: Operand,
        how: Presence,
    },
    Contains {
        sql: &'static str,
        value: String,
    },
}

fn mismatch(message: String) -> Invalid {
    Invalid::new("INVALID_FILTER_VALUE", message)
}

/// The SQL LIKE pattern of a literal: wildcard stars become `%`, and `%`, `_` and `\`
/// are escaped with `\` (PostgreSQL's default LIKE escape character).
fn like_pattern(lit: &Lit, substring: bool) -> String {
    let mut p = String::with_capacity(lit.text.len() + 2);
    if substring {
        p.push('%');
    }
    for (i, c) in lit.text.char_indices() {
        if c == '*' && lit.stars.binary_search(&i).is_ok() {
            p.push('%');
        } else {
            if matches!(c, '%' | '_' | '\\') {
                p.push('\\');
            }
            p.push(c);
        }
    }
    if substring {
        p.push('%');
    }
    p
}

struct Checker<'a> {
    src: &'a str,
    schema: &'a Schema,
}

impl Checker<'_> {
    fn check(&self, e: &Expr) -> Result<Cond, Invalid> {
        Ok(match e {
            Expr::And(v) => Cond::And(v.iter().map(|e| self.check(e)).collect::<Result<_, _>>()?),
            Expr::Or(v) => Cond::Or(v.iter().map(|e| self.check(e)).collect::<Result<_, _>>()?),
            Expr::Not(e) => Cond::Not(Box::new(self.check(e)?)),
            Expr::Restriction {
                field,
                key,
                op,
                value,
                field_pos,
                value_pos,
            } => self.restriction(field, key.as_deref(), *op, value, *field_pos, *value_pos)?,
        })
    }

    fn restriction(
        &self,
        name: &str,
        key: Option<&str>,
        op: Op,
        lit: &Lit,
        field_pos: usize,
        value_pos: usize,
    ) -> Result<Cond, Invalid> {
        let fat = at(self.src, field_pos);
        let vat = at(self.src, value_pos);
        let Some(field) = self.schema.field(name) else {
            return Err(Invalid::new(
                "UNKNOWN_FIELD",
                format!(
                    "unknown field {} at {fat}; filterable fields: {}",
                    show(name),
                    self.schema.filterable()
                ),
            ));
        };
        let presence = op == Op::Has && lit.is_lone_star();
        let no_wildcards = |what: &str| {
            if lit.stars.is_empty() {
                Ok(())
            } else {
                Err(mismatch(format!(
                    "the value {} at {vat} has a wildcard *, which {what}; write \\* inside \
                     quotes for a literal star",
                    show(&lit.text)
                )))
            }
        };
        let bad_op = |allowed: &str| {
            mismatch(format!(
                "the operator {} at {fat} does not apply to {name} ({}); use {allowed}",
                op.text(),
                field.ty.describe()
            ))
        };
        match (field.ty, key) {
            (FieldType::Map, None) => {
                if op != Op::Has {
                    return Err(mismatch(format!(
                        "{name} at {fat} is a map: compare one of its values ({name}.KEY {} \
                         VALUE) or test for a key ({name}:KEY)",
                        op.text()
                    )));
                }
                if presence {
                    return Ok(Cond::Present {
                        operand: Operand::Column(field.sql),
                        how: Presence::NonEmptyMap,
                    });
                }
                no_wildcards("map keys do not take")?;
                Ok(Cond::Present {
                    operand: Operand::MapValue(field.sql, lit.text.clone()),
                    how: Presence::NotNull,
                })
            }
            (FieldType::Map, Some(k)) => {
                if k.is_empty() {
                    return Err(mismatch(format!("missing map key after {name}. at {fat}")));
                }
                string_cond(
                    Operand::MapValue(field.sql, k.to_owned()),
                    true,
                    op,
                    lit,
                    presence,
                    vat,
                )
            }
            (_, Some(_)) => Err(mismatch(format!(
                "{name} at {fat} is {} and has no sub-fields",
                field.ty.describe()
            ))),
            (FieldType::String, None) => string_cond(
                Operand::Column(field.sql),
                field.nullable,
                op,
                lit,
                presence,
                vat,
            ),
            (FieldType::StringList, None) => {
                if op != Op::Has {
                    return Err(bad_op(&format!("{name}:VALUE (has)")));
                }
                if presence {
                    return Ok(Cond::Present {
                        operand: Operand::Column(field.sql),
                        how: Presence::NonEmptyArray,
                    });
                }
                no_wildcards("repeated fields do not take")?;
                Ok(Cond::Contains {
                    sql: field.sql,
                    value: lit.text.clone(),
                })
            }
            (ty, None) => {
                if presence {
                    if field.nullable {
                        return Ok(Cond::Present {
                            operand: Operand::Column(field.sql),
                            how: Presence::NotNull,
                        });
                    }
                    return Err(mismatch(format!(
                        "{name} at {fat} always has a value; {name}:* applies to optional fields"
                    )));
                }
                if matches!(ty, FieldType::Enum(_) | FieldType::Bool)
                    && !matches!(op, Op::Eq | Op::Ne | Op::Has)
                {
                    return Err(bad_op("= or !="));
                }
                no_wildcards("only string fields take")?;
                let value = typed_value(ty, name, lit, vat)?;
                Ok(Cond::Compare {
                    operand: Operand::Column(field.sql),
                    op,
                    value,
                    collate: false,
                    nullable: field.nullable,
                })
            }
        }
    }
}

fn string_cond(
    operand: Operand,
    nullable: bool,
    op: Op,
    lit: &Lit,
    presence: bool,
    vat: usize,
) -> Result<Cond, Invalid> {
    if presence {
        let how = if nullable {
            Presence::NotNull
        } else {
            Presence::NotEmpty
        };
        return Ok(Cond::Present { operand, how });
    }
    match op {
        Op::Has => Ok(Cond::Like {
            operand,
            pattern: like_pattern(lit, true),
            negate: false,
            insensitive: true,
            nullable,
        }),
        Op::Eq | Op::Ne if !lit.stars.is_empty() => Ok(Cond::Like {
            operand,
            pattern: like_pattern(lit, false),
            negate: op == Op::Ne,
            insensitive: false,
            nullable,
        }),
        Op::Eq | Op::Ne => Ok(Cond::Compare {
            operand,
            op,
            value: Bound::Text(lit.text.clone()),
            collate: false,
            nullable,
        }),
        _ if !lit.stars.is_empty() => Err(mismatch(format!(
            "the value {} at {vat} has a wildcard *, which only = and != take; write \\* \
             inside quotes for a literal star",
            show(&lit.text)
        ))),
        _ => Ok(Cond::Compare {
            operand,
            op,
            value: Bound::Text(lit.text.clone()),
            collate: true,
            nullable,
        }),
    }
}

fn typed_value(ty: FieldType, name: &str, lit: &Lit, vat: usize) -> Result<Bound, Invalid> {
    let t = lit.text.as_str();
    let wrong = |what: &str| {
        mismatch(format!(
            "{} at {vat} is not {what}, as {name} requires",
            show(t)
        ))
    };
    match ty {
        FieldType::Integer => t
            .parse::<i64>()
            .map(Bound::Int)
            .map_err(|_| wrong("an integer")),
        FieldType::Decimal => crate::domain::Decimal::parse(t)
            .map(|d| Bound::Numeric(d.as_str().to_owned()))
            .map_err(|_| wrong("a decimal number")),
        FieldType::Date => NaiveDate::parse_from_str(t, "%Y-%m-%d")
            .ok()
            .filter(|d| (1..=9999).contains(&d.year()))
            .map(Bound::Date)
            .ok_or_else(|| wrong("a date (YYYY-MM-DD, years 1 to 9999)")),
        FieldType::Timestamp => DateTime::parse_from_rfc3339(t)
            .map(|d| d.with_timezone(&Utc))
            .or_else(|_| {
                NaiveDate::parse_from_str(t, "%Y-%m-%d")
                    .map(|d| d.and_time(Default::default()).and_utc())
            })
            .map(Bound::Time)
            .map_err(|_| {
                wrong("a timestamp (RFC 3339 in quotes, e.g. \"2021-01-01T00:00:00Z\", or a date)")
            }),
        FieldType::Bool => match t.to_ascii_lowercase().as_str() {
            "true" => Ok(Bound::Bool(true)),
            "false" => Ok(Bound::Bool(false)),
            _ => Err(wrong("true or false")),
        },
        FieldType::Enum(e) => {
            let upper = t.to_ascii_uppercase();
            e.values
                .iter()
                .find(|(proto, _)| {
                    *proto == upper || proto.strip_prefix(e.prefix) == Some(upper.as_str())
                })
                .map(|(_, stored)| Bound::Text((*stored).to_owned()))
                .ok_or_else(|| {
                    let allowed: Vec<&str> = e
                        .values
                        .iter()
                        .map(|(p, _)| p.strip_prefix(e.prefix).unwrap_or(p))
                        .collect();
                    mismatch(format!(
                        "unknown value {} at {vat} for {name}; allowed: {} (with or without \
                         the prefix {})",
                        show(t),
                        allowed.join(", "),
                        e.prefix
                    ))
                })
        }
        FieldType::String | FieldType::StringList | FieldType::Map => Ok(Bound::Text(t.to_owned())),
    }
}

// ---------------------------------------------------------------------------------------
// SQL

/// A piece of generated SQL: a fragment written by us, or a bound value.
#[derive(Debug, Clone, PartialEq)]
pub enum Piece {
    /// SQL text from this module or a schema.
    Sql(&'static str),
    /// A `$n` placeholder and its value.
    Bind(Bound),
}

/// Every SQL fragment this module writes (besides the schemas' expressions).
pub const FRAGMENTS: &[&str] = &[
    "(",
    ")",
    " AND ",
    " OR ",
    "(NOT ",
    " = ",
    " <> ",
    " < ",
    " <= ",
    " > ",
    " >= ",
    " LIKE ",
    " NOT LIKE ",
    " ILIKE ",
    " COLLATE \"C\"",
    "COALESCE(",
    ", FALSE)",
    ", TRUE)",
    " ->> ",
    " <> '')",
    " IS NOT NULL)",
    " IS NULL)",
    "(cardinality(",
    ") > 0)",
    " <> '{}'::jsonb)",
    " = ANY(",
    "))",
    "::numeric",
    "::text",
    "::integer",
    "::date",
    "::timestamptz",
    "ARRAY[",
    ", ",
    ")::text",
    "] AS page_key",
    " ORDER BY ",
    " ASC",
    " DESC",
    " AND FALSE",
    " AND ((",
    " OR (",
    " LIMIT ",
];

#[derive(Default)]
struct Out(Vec<Piece>);

impl Out {
    fn sql(&mut self, s: &'static str) {
        debug_assert!(FRAGMENTS.contains(&s), "fragment {s:?} is not in FRAGMENTS");
        self.0.push(Piece::Sql(s));
    }

    /// A schema's expression.
    fn expr(&mut self, s: &'static str) {
        self.0.push(Piece::Sql(s));
    }

    fn bind(&mut self, b: Bound) {
        if let Bound::Numeric(_) = b {
            self.0.push(Piece::Bind(b));
            self.sql("::numeric");
        } else {
            self.0.push(Piece::Bind(b));
        }
    }

    fn operand(&mut self, o: &Operand) {
        match o {
            Operand::Column(s) => self.expr(s),
            Operand::MapValue(s, key) => {
                self.sql("(");
                self.expr(s);
                self.sql(" ->> ");
                self.bind(Bound::Text(key.clone()));
                self.sql(")");
            }
        }
    }

    fn cond(&mut self, c: &Cond) {
        match c {
            Cond::And(v) | Cond::Or(v) => {
                let sep = if matches!(c, Cond::And(_)) {
                    " AND "
                } else {
                    " OR "
                };
                self.sql("(");
                for (i, c) in v.iter().enumerate() {
                    if i > 0 {
                        self.sql(sep);
                    }
                    self.cond(c);
                }
                self.sql(")");
            }
            Cond::Not(c) => {
                self.sql("(NOT ");
                self.cond(c);
                self.sql(")");
            }
            Cond::Compare {
                operand,
                op,
                value,
                collate,
                nullable,
            } => {
                self.sql(if *nullable { "COALESCE(" } else { "(" });
                self.operand(operand);
                if *collate {
                    self.sql(" COLLATE \"C\"");
                }
                self.sql(op.sql());
                self.bind(value.clone());
                self.close(*nullable, *op == Op::Ne);
            }
            Cond::Like {
                operand,
                pattern,
                negate,
                insensitive,
                nullable,
            } => {
                self.sql(if *nullable { "COALESCE(" } else { "(" });
                self.operand(operand);
                self.sql(match (negate, insensitive) {
                    (_, true) => " ILIKE ",
                    (false, false) => " LIKE ",
                    (true, false) => " NOT LIKE ",
                });
                self.bind(Bound::Text(pattern.clone()));
                self.close(*nullable, *negate);
            }
            Cond::Present { operand, how } => match how {
                Presence::NotEmpty => {
                    self.sql("(");
                    self.operand(operand);
                    self.sql(" <> '')");
                }
                Presence::NotNull => {
                    self.sql("(");
                    self.operand(operand);
                    self.sql(" IS NOT NULL)");
                }
                Presence::NonEmptyArray => {
                    self.sql("(cardinality(");
                    self.operand(operand);
                    self.sql(") > 0)");
                }
                Presence::NonEmptyMap => {
                    self.sql("(");
                    self.operand(operand);
                    self.sql(" <> '{}'::jsonb)");
                }
            },
            Cond::Contains { sql, value } => {
                self.sql("(");
                self.bind(Bound::Text(value.clone()));
                self.sql(" = ANY(");
                self.expr(sql);
                self.sql("))");
            }
        }
    }

    /// Closes a comparison; one on a NULL value is false, or true for a negation.
    fn close(&mut self, nullable: bool, negation: bool) {
        self.sql(match (nullable, negation) {
            (false, _) => ")",
            (true, false) => ", FALSE)",
            (true, true) => ", TRUE)",
        });
    }

    fn apply(self, qb: &mut QueryBuilder<Postgres>) {
        for p in self.0 {
            match p {
                Piece::Sql(s) => {
                    qb.push(s);
                }
                Piece::Bind(Bound::Text(s) | Bound::Numeric(s)) => {
                    qb.push_bind(s);
                }
                Piece::Bind(Bound::Int(i)) => {
                    qb.push_bind(i);
                }
                Piece::Bind(Bound::Date(d)) => {
                    qb.push_bind(d);
                }
                Piece::Bind(Bound::Time(t)) => {
                    qb.push_bind(t);
                }
                Piece::Bind(Bound::Bool(b)) => {
                    qb.push_bind(b);
                }
            }
        }
    }
}

/// A checked filter, ready to compile.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Filter {
    cond: Option<Cond>,
}

impl Filter {
    /// Parses and checks `src` against `schema`. An empty (or blank) filter matches
    /// everything.
    pub fn parse(schema: &Schema, src: &str) -> Result<Self, Invalid> {
        let Some(expr) = parse(src)? else {
            return Ok(Self::default());
        };
        let cond = Checker { src, schema }.check(&expr)?;
        Ok(Self { cond: Some(cond) })
    }

    /// True when the filter matches everything.
    pub fn is_empty(&self) -> bool {
        self.cond.is_none()
    }

    /// The pieces of ` AND (condition)`, or nothing for an empty filter.
    pub fn pieces(&self) -> Vec<Piece> {
        let mut out = Out::default();
        if let Some(c) = &self.cond {
            out.sql(" AND ");
            out.cond(c);
        }
        out.0
    }
}

// ---------------------------------------------------------------------------------------
// order_by

#[derive(Debug, Clone, Copy, PartialEq)]
struct SortKey {
    sql: &'static str,
    desc: bool,
    nullable: bool,
    cast: &'static str,
}

/// A checked `order_by`: the sort keys, the resource id last.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderBy {
    keys: Vec<SortKey>,
    explicit: bool,
}

fn bad_order(reason: &'static str, message: String) -> Invalid {
    Invalid::new(reason, message)
}

impl OrderBy {
    /// The default order: by resource id.
    pub fn default_for(schema: &Schema) -> Self {
        Self {
            keys: vec![SortKey {
                sql: schema.id_sort,
                desc: false,
                nullable: false,
                cast: "::text",
            }],
            explicit: false,
        }
    }

    /// True when the request asked for an order (a non-blank `order_by`).
    pub fn is_explicit(&self) -> bool {
        self.explicit
    }

    /// Parses `src` (AIP-132: `field [desc], ...`) against `schema`.
    pub fn parse(schema: &Schema, src: &str) -> Result<Self, Invalid> {
        if src.len() > MAX_ORDER_BY_LEN {
            return Err(bad_order(
                "INVALID_ORDER_BY",
                format!(
                    "order_by is {} bytes long; at most {MAX_ORDER_BY_LEN} are accepted",
                    src.len()
                ),
            ));
        }
        if src.trim().is_empty() {
            return Ok(Self::default_for(schema));
        }
        let mut keys: Vec<SortKey> = Vec::new();
        let mut names: Vec<&str> = Vec::new();
        let mut offset = 0;
        for part in src.split(',') {
            let start = offset;
            offset += part.len() + 1;
            let words: Vec<&str> = part.split_whitespace().collect();
            let first_at = at(src, start + (part.len() - part.trim_start().len()));
            let (name, desc) = match words.as_slice() {
                [] => {
                    return Err(bad_order(
                        "INVALID_ORDER_BY",
                        format!(
                            "empty item in order_by at {first_at}; write field names separated \
                             by commas, each optionally followed by desc"
                        ),
                    ));
                }
                [name] => (*name, false),
                [name, "desc"] => (*name, true),
                [name, "asc"] => (*name, false),
                [_, other, ..] => {
                    return Err(bad_order(
                        "INVALID_ORDER_BY",
                        format!(
                            "unexpected {} after the field at {first_at} in order_by; a field \
                             may be followed only by desc or asc, and fields are separated by \
                             commas",
                            show(other)
                        ),
                    ));
                }
            };
            let Some(field) = schema.field(name) else {
                return Err(bad_order(
                    "UNKNOWN_FIELD",
                    format!(
                        "unknown field {} at {first_at}; orderable fields: {}",
                        show(name),
                        schema.orderable()
                    ),
                ));
            };
            let Some(sort) = field.sort else {
                return Err(bad_order(
                    "INVALID_ORDER_BY",
                    format!(
                        "{name} at {first_at} cannot be used in order_by; orderable fields: {}",
                        schema.orderable()
                    ),
                ));
            };
            if names.contains(&name) {
                return Err(bad_order(
                    "INVALID_ORDER_BY",
                    format!("{name} at {first_at} appears twice in order_by"),
                ));
            }
            names.push(field.name);
            keys.push(SortKey {
                sql: sort,
                desc,
                nullable: field.nullable,
                cast: field.ty.cast(),
            });
        }
        if !keys.iter().any(|k| k.sql == schema.id_sort) {
            keys.push(SortKey {
                sql: schema.id_sort,
                desc: false,
                nullable: false,
                cast: "::text",
            });
        }
        Ok(Self {
            keys,
            explicit: true,
        })
    }

    /// The pieces of the `page_key` column: `ARRAY[(key)::text, ...] AS page_key`.
    pub fn key_pieces(&self) -> Vec<Piece> {
        let mut out = Out::default();
        out.sql("ARRAY[");
        for (i, k) in self.keys.iter().enumerate() {
            if i > 0 {
                out.sql(", ");
            }
            out.sql("(");
            out.expr(k.sql);
            out.sql(")::text");
        }
        out.sql("] AS page_key");
        out.0
    }

    /// Appends the `page_key` column to a select list.
    pub fn push_key_column(&self, qb: &mut QueryBuilder<Postgres>) {
        Out(self.key_pieces()).apply(qb);
    }

    /// The content of a page token for a row whose `page_key` is `key`: the id itself
    /// in the default order (as before ordering existed), else the keys as JSON.
    pub fn token_key(&self, key: &[Option<String>]) -> String {
        if self.explicit {
            serde_json::to_string(key).unwrap_or_default()
        } else {
            key.first().cloned().flatten().unwrap_or_default()
        }
    }

    /// The pieces of ` AND (rows after the key)` for the key of a page token.
    pub fn after_pieces(&self, after: &str) -> Result<Vec<Piece>, Error> {
        let bad = || {
            Error::invalid(
                "page_token",
                "INVALID_PAGE_TOKEN",
                "page_token is not valid for this request: it was altered, or it was issued \
                 for a different request (filter, order_by, parent or method)",
            )
        };
        let values: Vec<Option<String>> = if self.explicit {
            serde_json::from_str(after).map_err(|_| bad())?
        } else {
            vec![Some(after.to_owned())]
        };
        if values.len() != self.keys.len()
            || values
                .iter()
                .zip(&self.keys)
                .any(|(v, k)| v.is_none() && !k.nullable)
        {
            return Err(bad());
        }
        let mut out = Out::default();
        // (k1 after v1) OR (k1 = v1 AND k2 after v2) OR ...; NULL sorts after every value.
        let mut disjuncts = 0;
        for (i, (k, v)) in self.keys.iter().zip(&values).enumerate() {
            if !k.desc && v.is_none() {
                continue; // nothing sorts after NULL in ascending order
            }
            out.sql(if disjuncts == 0 { " AND ((" } else { " OR (" });
            disjuncts += 1;
            for (kj, vj) in self.keys[..i].iter().zip(&values[..i]) {
                out.sql("(");
                out.expr(kj.sql);
                match vj {
                    None => out.sql(" IS NULL)"),
                    Some(vj) => {
                        out.sql(" = ");
                        out.bind(Bound::Text(vj.clone()));
                        out.sql(kj.cast);
                        out.sql(")");
                    }
                }
                out.sql(" AND ");
            }
            out.sql("(");
            out.expr(k.sql);
            match v {
                None => out.sql(" IS NOT NULL)"),
                Some(v) => {
                    out.sql(if k.desc { " < " } else { " > " });
                    out.bind(Bound::Text(v.clone()));
                    out.sql(k.cast);
                    if k.nullable && !k.desc {
                        out.sql(" OR ");
                        out.expr(k.sql);
                        out.sql(" IS NULL)");
                    } else {
                        out.sql(")");
                    }
                }
            }
            out.sql(")");
        }
        if disjuncts == 0 {
            out.sql(" AND FALSE");
        } else {
            out.sql(")");
        }
        Ok(out.0)
    }

    /// The pieces of ` ORDER BY k1 ASC, ...`.
    pub fn order_pieces(&self) -> Vec<Piece> {
        let mut out = Out::default();
        out.sql(" ORDER BY ");
        for (i, k) in self.keys.iter().enumerate() {
            if i > 0 {
                out.sql(", ");
            }
            out.expr(k.sql);
            out.sql(if k.desc { " DESC" } else { " ASC" });
        }
        out.0
    }
}

// ---------------------------------------------------------------------------------------
// A list query

/// The checked `filter` and `order_by` of a List request.
#[derive(Debug, Clone, PartialEq)]
pub struct ListQuery {
    /// Which rows.
    pub filter: Filter,
    /// In which order.
    pub order: OrderBy,
}

impl ListQuery {
    /// Parses both parameters, reporting every problem at once (fields `filter` and
    /// `order_by`).
    pub fn parse(schema: &Schema, filter: &str, order_by: &str) -> Result<Self, Error> {
        let mut v = Violations::new();
        let q = Self::check(&mut v, schema, filter, order_by);
        v.finish(|| q).map_err(Error::from)
    }

    /// Parses both parameters, recording problems in `v` (fields `filter` and
    /// `order_by`) along with the request's other ones.
    pub fn check(
        v: &mut Violations,
        schema: &Schema,
        filter: &str,
        order_by: &str,
    ) -> Option<Self> {
        let filter = v.check("filter", Filter::parse(schema, filter));
        let order = v.check("order_by", OrderBy::parse(schema, order_by));
        Some(Self {
            filter: filter?,
            order: order?,
        })
    }

    /// The pieces that follow `WHERE <the list's own condition>`: the filter, the rows
    /// after the page token's key, the order and the limit.
    pub fn tail_pieces(&self, after: Option<&str>, limit: i64) -> Result<Vec<Piece>, Error> {
        let mut p = self.filter.pieces();
        if let Some(after) = after {
            p.extend(self.order.after_pieces(after)?);
        }
        p.extend(self.order.order_pieces());
        p.push(Piece::Sql(" LIMIT "));
        p.push(Piece::Bind(Bound::Int(limit)));
        Ok(p)
    }

    /// Appends the tail of the statement (see [`tail_pieces`](Self::tail_pieces)) to a
    /// builder holding `SELECT ..., page_key FROM ... WHERE <condition>`.
    pub fn push_tail(
        &self,
        qb: &mut QueryBuilder<Postgres>,
        after: Option<&str>,
        limit: i64,
    ) -> Result<(), Error> {
        Out(self.tail_pieces(after, limit)?).apply(qb);
        Ok(())
    }
}

/// The identity a page token is bound to: `base` (method and parent) and, when given,
/// the filter and the order, length-prefixed so that no two requests share one. With
/// neither, it is `base` itself, as before filtering existed.
pub fn request_identity(base: &str, filter: &str, order_by: &str) -> String {
    if filter.is_empty() && order_by.is_empty() {
        return base.to_owned();
    }
    format!(
        "{base} filter[{}]={filter} order_by[{}]={order_by}",
        filter.len(),
        order_by.len()
    )
}

/// A row and its `page_key` column.
#[derive(Debug)]
pub struct Keyed<R> {
    /// The row.
    pub row: R,
    /// The sort keys of the row, as text.
    pub key: Vec<Option<String>>,
}

impl<'r, R: sqlx::FromRow<'r, PgRow>> sqlx::FromRow<'r, PgRow> for Keyed<R> {
    fn from_row(row: &'r PgRow) -> Result<Self, sqlx::Error> {
        use sqlx::Row as _;
        Ok(Self {
            row: R::from_row(row)?,
            key: row.try_get("page_key")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{indicators, initiatives, programs, targets};
    use proptest::prelude::*;

    /// The SQL of `pieces` with `$n` placeholders numbered from 1, and the bound values.
    fn render(pieces: &[Piece]) -> (String, Vec<Bound>) {
        let mut sql = String::new();
        let mut binds = Vec::new();
        for p in pieces {
            match p {
                Piece::Sql(s) => sql.push_str(s),
                Piece::Bind(b) => {
                    binds.push(b.clone());
                    sql.push_str(&format!("${}", binds.len()));
                }
            }
        }
        (sql, binds)
    }

    fn sql(schema: &Schema, filter: &str) -> (String, Vec<Bound>) {
        let f = Filter::parse(schema, filter).unwrap_or_else(|e| panic!("{filter}: {e:?}"));
        render(&f.pieces())
    }

    fn err(schema: &Schema, filter: &str) -> Invalid {
        Filter::parse(schema, filter).expect_err(filter)
    }

    fn text(s: &str) -> Bound {
        Bound::Text(s.to_owned())
    }

    #[test]
    fn empty_filters_match_everything() {
        for f in ["", "   ", "\n\t"] {
            let parsed = Filter::parse(&programs::FILTER_SCHEMA, f).unwrap();
            assert!(parsed.is_empty());
            assert!(parsed.pieces().is_empty());
        }
    }

    #[test]
    fn comparisons_compile_to_bound_parameters() {
        let s = &programs::FILTER_SCHEMA;
        assert_eq!(
            sql(s, r#"jurisdiction = "CN-CQ""#),
            (" AND (jurisdiction::text = $1)".into(), vec![text("CN-CQ")])
        );
        // Bare words are values too; numbers are typed by the field.
        assert_eq!(
            sql(s, "jurisdiction=CN-CQ start_year >= 2015"),
            (
                " AND ((jurisdiction::text = $1) AND (start_year >= $2))".into(),
                vec![text("CN-CQ"), Bound::Int(2015)]
            )
        );
        assert_eq!(
            sql(s, "end_year != -5"),
            (" AND (end_year <> $1)".into(), vec![Bound::Int(-5)])
        );
        // String order comparisons use code-point order.
        assert_eq!(
            sql(s, "title < 'M'"),
            (" AND (title COLLATE \"C\" < $1)".into(), vec![text("M")])
        );
        // An optional date: a comparison with NULL is false, != true.
        assert_eq!(
            sql(s, "adoption_date <= 2015-05-25 OR adoption_date != 2016-01-01"),
            (
                " AND (COALESCE(adoption_date <= $1, FALSE) OR COALESCE(adoption_date <> $2, TRUE))"
                    .into(),
                vec![
                    Bound::Date(NaiveDate::from_ymd_opt(2015, 5, 25).unwrap()),
                    Bound::Date(NaiveDate::from_ymd_opt(2016, 1, 1).unwrap()),
                ]
            )
        );
        assert_eq!(
            sql(s, r#"create_time > "2021-01-01T08:00:00+08:00""#),
            (
                " AND (create_time > $1)".into(),
                vec![Bound::Time(
                    DateTime::parse_from_rfc3339("2021-01-01T00:00:00Z")
                        .unwrap()
                        .with_timezone(&Utc)
                )]
            )
        );
        assert_eq!(
            sql(s, "update_time >= 2021-01-01"),
            (
                " AND (update_time >= $1)".into(),
                vec![Bound::Time(
                    DateTime::parse_from_rfc3339("2021-01-01T00:00:00Z")
                        .unwrap()
                        .with_timezone(&Utc)
                )]
            )
        );
        // `:` on a number is equality.
        assert_eq!(
            sql(s, "start_year:2015"),
            (" AND (start_year = $1)".into(), vec![Bound::Int(2015)])
        );
    }

    #[test]
    fn precedence_not_and_parentheses() {
        let s = &programs::FILTER_SCHEMA;
        // OR binds tighter than AND (AIP-160).
        assert_eq!(
            sql(s, "start_year = 1 AND end_year = 2 OR end_year = 3").0,
            " AND ((start_year = $1) AND ((end_year = $2) OR (end_year = $3)))"
        );
        assert_eq!(
            sql(s, "(start_year = 1 AND end_year = 2) OR end_year = 3").0,
            " AND (((start_year = $1) AND (end_year = $2)) OR (end_year = $3))"
        );
        // Juxtaposition is AND, at the level of AND.
        assert_eq!(
            sql(s, "start_year = 1 end_year = 2 OR end_year = 3").0,
            " AND ((start_year = $1) AND ((end_year = $2) OR (end_year = $3)))"
        );
        assert_eq!(
            sql(s, "NOT start_year = 1 -end_year = 2").0,
            " AND ((NOT (start_year = $1)) AND (NOT (end_year = $2)))"
        );
        assert_eq!(
            sql(s, "NOT (start_year = 1 OR -(end_year = 2))").0,
            " AND (NOT ((start_year = $1) OR (NOT (end_year = $2))))"
        );
        // Keywords are upper case only: `and` is taken for a field name here.
        let e = err(s, "start_year = 1 and end_year = 2");
        assert_eq!(e.reason, "INVALID_FILTER");
        assert!(
            e.message.starts_with(
                "expected a comparison operator (= != < <= > >= :) after \"and\" at 20"
            ),
            "{}",
            e.message
        );
    }

    #[test]
    fn strings_wildcards_and_has() {
        let s = &programs::FILTER_SCHEMA;
        assert_eq!(
            sql(s, r#"title = "Chong*""#),
            (" AND (title LIKE $1)".into(), vec![text("Chong%")])
        );
        // %, _ and \ of the value are escaped; \* is a literal star.
        assert_eq!(
            sql(s, r#"title != "*50%_a\\b\*""#),
            (
                " AND (title NOT LIKE $1)".into(),
                vec![text(r"%50\%\_a\\b*")]
            )
        );
        // Without a wildcard, = is plain equality, a literal star included.
        assert_eq!(
            sql(s, r#"title = "a\*""#),
            (" AND (title = $1)".into(), vec![text("a*")])
        );
        // Bare words take wildcards too.
        assert_eq!(sql(s, "title = Chong*").1, vec![text("Chong%")]);
        // : is a case-insensitive substring match.
        assert_eq!(
            sql(s, "title:\"trade 100%\""),
            (" AND (title ILIKE $1)".into(), vec![text(r"%trade 100\%%")])
        );
        assert_eq!(sql(s, "summary:*"), (" AND (summary <> '')".into(), vec![]));
        assert_eq!(
            sql(s, "-adoption_date:*"),
            (" AND (NOT (adoption_date IS NOT NULL))".into(), vec![])
        );
        assert_eq!(err(s, "title < \"a*\"").reason, "INVALID_FILTER_VALUE");
        assert_eq!(err(s, "start_year = 20*").reason, "INVALID_FILTER_VALUE");
        assert_eq!(err(s, "start_year:*").reason, "INVALID_FILTER_VALUE");
    }

    #[test]
    fn enums_bools_lists_maps_and_decimals() {
        let s = &indicators::FILTER_SCHEMA;
        assert_eq!(
            sql(
                s,
                "flow = EXPORT AND frequency != frequency_monthly AND year_to_date = TRUE"
            ),
            (
                " AND ((flow = $1) AND (frequency <> $2) AND (year_to_date = $3))".into(),
                vec![text("export"), text("M"), Bound::Bool(true)]
            )
        );
        assert_eq!(
            sql(s, "dimensions.outsourcing = ITO"),
            (
                " AND COALESCE((dimensions ->> $1) = $2, FALSE)".into(),
                vec![text("outsourcing"), text("ITO")]
            )
        );
        assert_eq!(
            sql(s, "dimensions:partner dimensions:*"),
            (
                " AND (((dimensions ->> $1) IS NOT NULL) AND (dimensions <> '{}'::jsonb))".into(),
                vec![text("partner")]
            )
        );
        assert_eq!(
            sql(s, "service_category = S*").0,
            " AND (COALESCE(service_category, '') LIKE $1)"
        );
        let e = err(s, "flow = EXPROT");
        assert_eq!(e.reason, "INVALID_FILTER_VALUE");
        assert!(
            e.message
                .contains("allowed: EXPORT, IMPORT, TOTAL, BALANCE, NONE"),
            "{}",
            e.message
        );
        assert_eq!(err(s, "flow < EXPORT").reason, "INVALID_FILTER_VALUE");
        assert_eq!(err(s, "year_to_date = yes").reason, "INVALID_FILTER_VALUE");
        assert_eq!(err(s, "dimensions = x").reason, "INVALID_FILTER_VALUE");
        assert_eq!(err(s, "title.x = 1").reason, "INVALID_FILTER_VALUE");

        let s = &initiatives::FILTER_SCHEMA;
        assert_eq!(
            sql(s, r#"tags:"cloud" AND state:active AND tags:*"#),
            (
                " AND (($1 = ANY(i.tags)) AND (i.state = $2) AND (cardinality(i.tags) > 0))".into(),
                vec![text("cloud"), text("active")]
            )
        );
        assert_eq!(err(s, "tags = cloud").reason, "INVALID_FILTER_VALUE");

        let s = &targets::FILTER_SCHEMA;
        assert_eq!(
            sql(s, "target_value >= 3.05e1 AND baseline_value < 7"),
            (
                " AND ((target_value >= $1::numeric) AND COALESCE(baseline_value < $2::numeric, FALSE))"
                    .into(),
                vec![
                    Bound::Numeric("30.5".into()),
                    Bound::Numeric("7".into())
                ]
            )
        );
        assert_eq!(err(s, "target_value > NaN").reason, "INVALID_FILTER_VALUE");
        assert_eq!(
            sql(s, "kind = growth_rate direction = HIGHER_IS_BETTER").1,
            vec![text("growth_rate"), text("higher")]
        );
    }

    #[test]
    fn errors_name_the_position_and_the_problem() {
        let s = &programs::FILTER_SCHEMA;
        let e = err(s, "titel = \"x\"");
        assert_eq!(e.reason, "UNKNOWN_FIELD");
        assert!(
            e.message.starts_with(
                "unknown field \"titel\" at 1; filterable fields: name, title, issuing_body"
            ),
            "{}",
            e.message
        );
        let e = err(s, "title = \"x\" AND start_year = abc");
        assert_eq!(e.reason, "INVALID_FILTER_VALUE");
        assert_eq!(
            e.message,
            "\"abc\" at 30 is not an integer, as start_year requires"
        );
        // Positions count characters, not bytes.
        let e = err(s, "title = \"重庆\" AND x = 1");
        assert!(e.message.contains(" at 18;"), "{}", e.message);
        let cases = [
            ("title", "expected a comparison operator"),
            (
                "title =",
                "expected a value after = at 8, found the end of the filter",
            ),
            ("title = AND", "found the keyword \"AND\""),
            ("(title = x", "expected \")\" at 11 to close the \"(\" at 1"),
            (
                "title = x)",
                "expected AND, OR or the end of the filter at 10",
            ),
            ("()", "empty parentheses at 1"),
            ("title = \"x", "unterminated string starting at 9"),
            ("title = \"\\q\"", "unknown escape \\q at 10"),
            ("title ! x", "unexpected \"!\" at 7"),
            ("\"x\"", "searching by a bare value is not supported"),
            ("AND title = x", "expected a restriction"),
            ("title = x OR", "expected a restriction"),
            ("NOT NOT title = x", "expected a restriction"),
            ("title = = x", "expected a value after ="),
        ];
        for (f, want) in cases {
            let e = err(s, f);
            assert!(e.message.contains(want), "{f}: {}", e.message);
        }
    }

    #[test]
    fn limits_are_errors_not_overflows() {
        let s = &programs::FILTER_SCHEMA;
        let deep = format!("{}title = x{}", "(".repeat(32), ")".repeat(32));
        assert!(Filter::parse(s, &deep).is_ok());
        let deeper = format!("{}title = x{}", "(".repeat(33), ")".repeat(33));
        assert_eq!(err(s, &deeper).reason, "FILTER_TOO_DEEP");
        // Far deeper than any stack would allow, within the length limit.
        let bomb = "(".repeat(MAX_FILTER_LEN);
        assert_eq!(err(s, &bomb).reason, "FILTER_TOO_DEEP");
        let long = format!("title = \"{}\"", "x".repeat(MAX_FILTER_LEN));
        assert_eq!(err(s, &long).reason, "FILTER_TOO_LONG");
        assert_eq!(err(s, "title = \"a\0b\"").reason, "INVALID_FILTER");
        let many = vec!["start_year = 1"; 100].join(" OR ");
        assert_eq!(sql(s, &many).1.len(), 100);
    }

    #[test]
    fn order_by_parses_and_compiles() {
        let s = &programs::FILTER_SCHEMA;
        let o = OrderBy::parse(s, "").unwrap();
        assert!(!o.is_explicit());
        assert_eq!(
            render(&o.order_pieces()).0,
            " ORDER BY programs.program_id ASC"
        );
        assert_eq!(
            render(&o.key_pieces()).0,
            "ARRAY[(programs.program_id)::text] AS page_key"
        );
        // The default order keeps the id as the token key, as before ordering existed.
        assert_eq!(o.token_key(&[Some("cq".into())]), "cq");
        assert_eq!(
            render(&o.after_pieces("cq").unwrap()),
            (
                " AND (((programs.program_id > $1::text)))".into(),
                vec![text("cq")]
            )
        );

        let o = OrderBy::parse(s, " start_year desc ,title,  adoption_date asc").unwrap();
        assert_eq!(
            render(&o.order_pieces()).0,
            " ORDER BY programs.start_year DESC, programs.title COLLATE \"C\" ASC, programs.adoption_date ASC, programs.program_id ASC"
        );
        assert_eq!(
            render(&o.key_pieces()).0,
            "ARRAY[(programs.start_year)::text, (programs.title COLLATE \"C\")::text, (programs.adoption_date)::text, \
             (programs.program_id)::text] AS page_key"
        );
        let key = vec![
            Some("2015".to_owned()),
            Some("A".to_owned()),
            None,
            Some("cq".to_owned()),
        ];
        let token = o.token_key(&key);
        assert_eq!(token, r#"["2015","A",null,"cq"]"#);
        // Rows after (2015 desc, "A", NULL, cq): the NULL date sorts last, so the
        // third key contributes no disjunct of its own.
        assert_eq!(
            render(&o.after_pieces(&token).unwrap()),
            (
                " AND (((programs.start_year < $1::integer)) \
                 OR ((programs.start_year = $2::integer) AND (programs.title COLLATE \"C\" > $3::text)) \
                 OR ((programs.start_year = $4::integer) AND (programs.title COLLATE \"C\" = $5::text) \
                 AND (programs.adoption_date IS NULL) AND (programs.program_id > $6::text)))"
                    .into(),
                vec![
                    text("2015"),
                    text("2015"),
                    text("A"),
                    text("2015"),
                    text("A"),
                    text("cq")
                ]
            )
        );
        // An ascending nullable key with a value: NULLs follow.
        let o = OrderBy::parse(s, "adoption_date").unwrap();
        assert_eq!(
            render(&o.after_pieces(r#"["2015-05-25","cq"]"#).unwrap()).0,
            " AND (((programs.adoption_date > $1::date OR programs.adoption_date IS NULL)) \
             OR ((programs.adoption_date = $2::date) AND (programs.program_id > $3::text)))"
        );
        // Descending with a NULL: every value follows.
        let o = OrderBy::parse(s, "adoption_date desc").unwrap();
        assert_eq!(
            render(&o.after_pieces("[null,\"cq\"]").unwrap()).0,
            " AND (((programs.adoption_date IS NOT NULL)) \
             OR ((programs.adoption_date IS NULL) AND (programs.program_id > $1::text)))"
        );
        // Ordering by name needs no tie-breaker.
        let o = OrderBy::parse(s, "name desc").unwrap();
        assert_eq!(
            render(&o.order_pieces()).0,
            " ORDER BY programs.program_id DESC"
        );
        // A token whose keys do not fit is refused.
        let o = OrderBy::parse(s, "start_year").unwrap();
        assert!(o.after_pieces("cq").is_err());
        assert!(o.after_pieces(r#"["2015"]"#).is_err());
        assert!(o.after_pieces(r#"[null,"cq"]"#).is_err());
    }

    /// A bare column name in ORDER BY would name the select list's output column, which
    /// may be a text rendering (`target_value::text AS target_value` sorts "10" before
    /// "7.5"): every sort expression is qualified with its table or is an expression.
    #[test]
    fn sort_expressions_are_never_bare_names() {
        for schema in schemas() {
            let sorts = schema.fields.iter().filter_map(|f| f.sort);
            for sort in sorts.chain([schema.id_sort]) {
                assert!(
                    sort.contains('.') || sort.contains('('),
                    "sort expression {sort:?} is a bare name"
                );
            }
        }
    }

    #[test]
    fn order_by_errors() {
        let s = &programs::FILTER_SCHEMA;
        let cases = [
            (
                "titel",
                "UNKNOWN_FIELD",
                "unknown field \"titel\" at 1; orderable fields: name, title",
            ),
            (
                "title, summary",
                "INVALID_ORDER_BY",
                "summary at 8 cannot be used in order_by",
            ),
            (
                "title, title desc",
                "INVALID_ORDER_BY",
                "title at 8 appears twice",
            ),
            ("title,", "INVALID_ORDER_BY", "empty item in order_by at 7"),
            (
                "title descending",
                "INVALID_ORDER_BY",
                "unexpected \"descending\"",
            ),
            (
                "title programs.start_year",
                "INVALID_ORDER_BY",
                "separated by commas",
            ),
        ];
        for (o, reason, want) in cases {
            let e = OrderBy::parse(s, o).expect_err(o);
            assert_eq!(e.reason, reason, "{o}");
            assert!(e.message.contains(want), "{o}: {}", e.message);
        }
        let long = vec!["title"; 200].join(",");
        assert!(OrderBy::parse(s, &long).is_err());
    }

    #[test]
    fn list_query_reports_both_fields_and_request_identity_separates() {
        let e = ListQuery::parse(&programs::FILTER_SCHEMA, "x = 1", "y").unwrap_err();
        let Error::InvalidArgument(v) = e else {
            panic!("{e:?}")
        };
        let fields: Vec<&str> = v.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["filter", "order_by"]);
        assert_eq!(request_identity("ListPrograms", "", ""), "ListPrograms");
        assert_ne!(
            request_identity("ListPrograms", "a order_by[0]=", ""),
            request_identity("ListPrograms", "a", " order_by[0]=")
        );
        assert_ne!(
            request_identity("ListPrograms", "a", ""),
            request_identity("ListPrograms", "", "a")
        );
    }

    #[test]
    fn tail_and_query_builder_agree() {
        let q =
            ListQuery::parse(&targets::FILTER_SCHEMA, "kind = LEVEL", "target_value desc").unwrap();
        let pieces = q.tail_pieces(Some(r#"["30","t"]"#), 11).unwrap();
        let (rendered, binds) = render(&pieces);
        assert_eq!(
            rendered,
            " AND (kind = $1) AND (((targets.target_value < $2::numeric)) OR ((targets.target_value = \
             $3::numeric) AND (targets.target_id > $4::text))) ORDER BY targets.target_value DESC, targets.target_id \
             ASC LIMIT $5"
        );
        assert_eq!(binds.len(), 5);
        let mut qb = QueryBuilder::<Postgres>::new("SELECT 1 FROM targets WHERE TRUE");
        q.push_tail(&mut qb, Some(r#"["30","t"]"#), 11).unwrap();
        assert_eq!(
            qb.sql().as_str(),
            format!("SELECT 1 FROM targets WHERE TRUE{rendered}")
        );
    }

    // -----------------------------------------------------------------------------------
    // Properties: no input panics, and no input text reaches the SQL.

    fn schemas() -> [&'static Schema; 4] {
        [
            &programs::FILTER_SCHEMA,
            &initiatives::FILTER_SCHEMA,
            &targets::FILTER_SCHEMA,
            &indicators::FILTER_SCHEMA,
        ]
    }

    /// Every SQL piece is a fragment of this module or an expression of the schema.
    fn assert_allowed(schema: &Schema, pieces: &[Piece]) {
        let exprs = schema.expressions();
        for p in pieces {
            if let Piece::Sql(s) = p {
                assert!(
                    FRAGMENTS.contains(s) || exprs.contains(s),
                    "SQL fragment {s:?} is not on the allow-list"
                );
            }
        }
    }

    fn check_any(schema: &Schema, input: &str) {
        match Filter::parse(schema, input) {
            Ok(f) => {
                let pieces = f.pieces();
                assert_allowed(schema, &pieces);
                let (sql, _) = render(&pieces);
                assert!(!sql.contains(';'), "{sql}");
            }
            Err(e) => {
                assert!(!e.message.is_empty());
                assert!(e.message.len() < 2_000, "{}", e.message);
            }
        }
        if let Ok(o) = OrderBy::parse(schema, input) {
            assert_allowed(schema, &o.order_pieces());
            assert_allowed(schema, &o.key_pieces());
        }
    }

    fn token() -> impl Strategy<Value = String> {
        let fixed: Vec<&'static str> = vec![
            "AND",
            "OR",
            "NOT",
            "-",
            "(",
            ")",
            "=",
            "!=",
            "<",
            "<=",
            ">",
            ">=",
            ":",
            "!",
            "*",
            "\"",
            "'",
            "\\",
            ".",
            ",",
            "desc",
            "title",
            "start_year",
            "adoption_date",
            "create_time",
            "dimensions",
            "dimensions.x",
            "tags",
            "state",
            "flow",
            "kind",
            "target_value",
            "baseline_value",
            "year_to_date",
            "name",
            "true",
            "2015",
            "-3",
            "1e3",
            "2015-05-25",
            "\"2021-01-01T00:00:00Z\"",
            "ACTIVE",
            "EXPORT",
            "\"x'; DROP TABLE programs; --\"",
            "'; DELETE FROM targets",
            "$1",
            "%",
            "_",
            "\"a*b\"",
            "\"\\*\"",
            "重庆",
            "\u{0}",
        ];
        prop_oneof![
            proptest::sample::select(fixed).prop_map(str::to_owned),
            "[ -~]{0,6}",
            any::<String>().prop_map(|s| s.chars().take(4).collect()),
        ]
    }

    fn soup() -> impl Strategy<Value = String> {
        (
            proptest::collection::vec(token(), 0..24),
            proptest::collection::vec(prop_oneof![Just(""), Just(" "), Just("  ")], 24),
        )
            .prop_map(|(toks, seps)| {
                toks.iter()
                    .zip(seps)
                    .map(|(t, s)| format!("{t}{s}"))
                    .collect()
            })
    }

    /// A literal of the right type for `ty`, quoted or bare, with a marker that
    /// must never reach the SQL.
    fn value_for(ty: FieldType) -> BoxedStrategy<String> {
        match ty {
            FieldType::StringList => prop_oneof![
                "[a-zA-Z0-9 %_;'-]{0,12}"
                    .prop_map(|s| format!("\"zqx{}\"", s.replace('\'', "\\'"))),
                "[a-z]{1,8}".prop_map(|s| format!("zqx{s}")),
                Just("*".to_owned()),
            ]
            .boxed(),
            FieldType::String | FieldType::Map => prop_oneof![
                "[a-zA-Z0-9 %_;'-]{0,12}"
                    .prop_map(|s| format!("\"zqx{}\"", s.replace('\'', "\\'"))),
                "[a-z]{1,8}\\*?".prop_map(|s| format!("zqx{s}")),
                Just("\"zqx'; DROP TABLE programs; --\"".to_owned()),
                Just("*".to_owned()),
            ]
            .boxed(),
            FieldType::Enum(e) => proptest::sample::select(e.values.to_vec())
                .prop_map(|(p, _)| p.to_lowercase())
                .boxed(),
            FieldType::Integer => any::<i32>().prop_map(|i| i.to_string()).boxed(),
            FieldType::Decimal => (any::<i32>(), 0u32..100)
                .prop_map(|(a, b)| format!("{a}.{b}"))
                .boxed(),
            FieldType::Date => (1990i32..2100, 1u32..13, 1u32..29)
                .prop_map(|(y, m, d)| format!("{y:04}-{m:02}-{d:02}"))
                .boxed(),
            FieldType::Timestamp => (1990i32..2100, 0u32..24)
                .prop_map(|(y, h)| format!("\"{y:04}-06-01T{h:02}:30:00Z\""))
                .boxed(),
            FieldType::Bool => {
                prop_oneof![Just("true".to_owned()), Just("FALSE".to_owned())].boxed()
            }
        }
    }

    fn restriction(schema: &'static Schema) -> BoxedStrategy<String> {
        proptest::sample::select(schema.fields.iter().collect::<Vec<_>>())
            .prop_flat_map(|f| {
                let ops: Vec<&'static str> = match f.ty {
                    FieldType::Enum(_) | FieldType::Bool => vec!["=", "!=", ":"],
                    FieldType::StringList => vec![":"],
                    FieldType::String | FieldType::Map => vec!["=", "!=", ":"],
                    _ => vec!["=", "!=", "<", "<=", ">", ">=", ":"],
                };
                let name = if matches!(f.ty, FieldType::Map) {
                    format!("{}.zqxkey", f.name)
                } else {
                    f.name.to_owned()
                };
                (proptest::sample::select(ops), value_for(f.ty))
                    .prop_map(move |(op, v)| format!("{name} {op} {v}"))
            })
            .boxed()
    }

    /// Well-typed filters of `schema`, nested with AND, OR, NOT and parentheses.
    pub(crate) fn valid_filter(schema: &'static Schema) -> BoxedStrategy<String> {
        restriction(schema)
            .prop_recursive(4, 24, 4, |inner| {
                prop_oneof![
                    proptest::collection::vec(inner.clone(), 2..4).prop_map(|v| v.join(" AND ")),
                    proptest::collection::vec(inner.clone(), 2..4).prop_map(|v| v.join(" OR ")),
                    proptest::collection::vec(inner.clone(), 2..4).prop_map(|v| v.join(" ")),
                    inner.clone().prop_map(|f| format!("NOT ({f})")),
                    inner.clone().prop_map(|f| format!("-({f})")),
                    inner.prop_map(|f| format!("({f})")),
                ]
            })
            .boxed()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

        #[test]
        fn arbitrary_strings_never_panic_nor_reach_the_sql(input in any::<String>()) {
            for s in schemas() {
                check_any(s, &input);
            }
        }

        #[test]
        fn token_soups_never_panic_nor_reach_the_sql(input in soup()) {
            for s in schemas() {
                check_any(s, &input);
            }
        }

        #[test]
        fn well_typed_filters_compile_to_allowed_sql(
            (i, input) in (0usize..4).prop_flat_map(|i| (Just(i), valid_filter(schemas()[i])))
        ) {
            let schema = schemas()[i];
            let f = Filter::parse(schema, &input);
            prop_assert!(f.is_ok(), "{input}: {f:?}");
            let pieces = f.unwrap().pieces();
            assert_allowed(schema, &pieces);
            let (sql, binds) = render(&pieces);
            prop_assert!(!sql.contains("zqx") && !sql.contains("DROP"), "{sql}");
            // Every restriction binds its value, except `:*`; a map value also its key.
            let restrictions = input.matches(" = ").count() + input.matches(" != ").count()
                + input.matches(" < ").count() + input.matches(" <= ").count()
                + input.matches(" > ").count() + input.matches(" >= ").count()
                + input.matches(" : ").count();
            let stars = input.matches(" : *").count();
            let keys = input.matches(".zqxkey").count();
            prop_assert_eq!(binds.len(), restrictions - stars + keys, "{}", input);
        }
    }
}
