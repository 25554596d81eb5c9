//! The public shape of generated code, as stable text for snapshots.
//!
//! [`shape`] parses a generated file with syn and prints a skeleton of what
//! a user of the crate can reach: every public module, `use`, struct (its
//! public fields with their types and the serde attributes that change the
//! wire form), enum (its variants), the signatures of the public methods of
//! every inherent impl (the `Client` operation methods, the builder setters
//! with their argument bounds, `send()` with its return type) and the
//! headers of trait impls. Bodies, doc comments and private items are left
//! out, so a progenitor or spec bump shows up as a short, reviewable diff of
//! this text, and nothing else does.

use std::fmt::Write as _;

use proc_macro2::{Delimiter, Spacing, TokenStream, TokenTree};
use quote::ToTokens;
use syn::{
    Attribute, Fields, ImplItem, Item, ItemEnum, ItemImpl, ItemStruct, Meta, TraitItem, Visibility,
};

/// Prints the public shape of `code`, a complete Rust source file.
///
/// Fails only when `code` does not parse.
///
/// ```
/// let shape = xtask::shape::shape(
///     "pub mod types { #[derive(Debug)] pub struct A { pub b: ::std::option::Option<u8>, c: u8 } }",
/// )
/// .unwrap();
/// assert_eq!(
///     shape,
///     "pub mod types {\n    #[derive(Debug)]\n    pub struct A {\n        pub b: Option<u8>,\n        /* private fields */\n    }\n}\n"
/// );
/// ```
pub fn shape(code: &str) -> syn::Result<String> {
    let file = syn::parse_file(code)?;
    let mut out = Printer::default();
    out.items(&file.items);
    Ok(out.text)
}

#[derive(Default)]
struct Printer {
    text: String,
    depth: usize,
}

fn is_pub(vis: &Visibility) -> bool {
    matches!(vis, Visibility::Public(_))
}

impl Printer {
    fn line(&mut self, s: impl AsRef<str>) {
        for _ in 0..self.depth {
            self.text.push_str("    ");
        }
        self.text.push_str(s.as_ref());
        self.text.push('\n');
    }

    fn items(&mut self, items: &[Item]) {
        for item in items {
            self.item(item);
        }
    }

    fn item(&mut self, item: &Item) {
        match item {
            Item::Use(u) if is_pub(&u.vis) => {
                let tree = tidy(u.tree.to_token_stream());
                self.line(format!("pub use {tree};"));
            }
            Item::Mod(m) if is_pub(&m.vis) => match &m.content {
                Some((_, items)) => {
                    self.line(format!("pub mod {} {{", m.ident));
                    self.depth += 1;
                    self.items(items);
                    self.depth -= 1;
                    self.line("}");
                }
                None => self.line(format!("pub mod {};", m.ident)),
            },
            Item::Struct(s) if is_pub(&s.vis) => self.structure(s),
            Item::Enum(e) if is_pub(&e.vis) => self.enumeration(e),
            Item::Impl(i) => self.implementation(i),
            Item::Fn(f) if is_pub(&f.vis) => {
                self.line(format!("pub {};", tidy(f.sig.to_token_stream())));
            }
            Item::Type(t) if is_pub(&t.vis) => {
                self.line(format!(
                    "pub type {}{} = {};",
                    t.ident,
                    tidy(t.generics.to_token_stream()),
                    tidy(t.ty.to_token_stream())
                ));
            }
            Item::Const(c) if is_pub(&c.vis) => {
                self.line(format!(
                    "pub const {}: {};",
                    c.ident,
                    tidy(c.ty.to_token_stream())
                ));
            }
            Item::Trait(t) if is_pub(&t.vis) => {
                self.line(format!(
                    "pub trait {}{} {{",
                    t.ident,
                    tidy(t.generics.to_token_stream())
                ));
                self.depth += 1;
                for ti in &t.items {
                    match ti {
                        TraitItem::Fn(f) => {
                            self.line(format!("{};", tidy(f.sig.to_token_stream())))
                        }
                        TraitItem::Type(ty) => self.line(format!("type {};", ty.ident)),
                        _ => {}
                    }
                }
                self.depth -= 1;
                self.line("}");
            }
            _ => {}
        }
    }

    /// `#[derive(..)]` and `#[serde(..)]` of an item, one line each.
    fn item_attrs(&mut self, attrs: &[Attribute]) {
        for attr in attrs {
            if let Some(a) = shown_attr(attr) {
                self.line(a);
            }
        }
    }

    fn structure(&mut self, s: &ItemStruct) {
        self.item_attrs(&s.attrs);
        let head = format!(
            "pub struct {}{}",
            s.ident,
            tidy(s.generics.to_token_stream())
        );
        match &s.fields {
            Fields::Named(named) => {
                self.line(format!("{head} {{"));
                self.depth += 1;
                let mut private = false;
                for f in &named.named {
                    if !is_pub(&f.vis) {
                        private = true;
                        continue;
                    }
                    let name = f
                        .ident
                        .as_ref()
                        .map(ToString::to_string)
                        .unwrap_or_default();
                    self.line(format!(
                        "{}pub {name}: {},",
                        field_attrs(&f.attrs),
                        tidy(f.ty.to_token_stream())
                    ));
                }
                if private {
                    self.line("/* private fields */");
                }
                self.depth -= 1;
                self.line("}");
            }
            Fields::Unnamed(unnamed) => {
                let fields: Vec<String> = unnamed
                    .unnamed
                    .iter()
                    .map(|f| {
                        let vis = if is_pub(&f.vis) { "pub " } else { "" };
                        format!("{vis}{}", tidy(f.ty.to_token_stream()))
                    })
                    .collect();
                self.line(format!("{head}({});", fields.join(", ")));
            }
            Fields::Unit => self.line(format!("{head};")),
        }
    }

    fn enumeration(&mut self, e: &ItemEnum) {
        self.item_attrs(&e.attrs);
        self.line(format!(
            "pub enum {}{} {{",
            e.ident,
            tidy(e.generics.to_token_stream())
        ));
        self.depth += 1;
        for v in &e.variants {
            let attrs = field_attrs(&v.attrs);
            let fields = match &v.fields {
                Fields::Named(named) => {
                    let fs: Vec<String> = named
                        .named
                        .iter()
                        .map(|f| {
                            let name = f
                                .ident
                                .as_ref()
                                .map(ToString::to_string)
                                .unwrap_or_default();
                            format!(
                                "{}{name}: {}",
                                field_attrs(&f.attrs),
                                tidy(f.ty.to_token_stream())
                            )
                        })
                        .collect();
                    format!(" {{ {} }}", fs.join(", "))
                }
                Fields::Unnamed(unnamed) => {
                    let fs: Vec<String> = unnamed
                        .unnamed
                        .iter()
                        .map(|f| tidy(f.ty.to_token_stream()))
                        .collect();
                    format!("({})", fs.join(", "))
                }
                Fields::Unit => String::new(),
            };
            self.line(format!("{attrs}{}{fields},", v.ident));
        }
        self.depth -= 1;
        self.line("}");
    }

    fn implementation(&mut self, i: &ItemImpl) {
        let mut head = format!("impl{} ", tidy(i.generics.to_token_stream()));
        if let Some((path, _)) = &i.trait_ {
            let _ = write!(head, "{} for ", tidy(path.to_token_stream()));
        }
        head.push_str(&tidy(i.self_ty.to_token_stream()));
        if let Some(w) = &i.generics.where_clause {
            let _ = write!(head, " {}", tidy(w.to_token_stream()));
        }
        let inherent = i.trait_.is_none();
        let mut members = Vec::new();
        for item in &i.items {
            match item {
                // The methods a trait impl provides are the trait's; its
                // associated types are part of the shape.
                ImplItem::Fn(f) if inherent && is_pub(&f.vis) => {
                    members.push(format!("pub {};", tidy(f.sig.to_token_stream())));
                }
                ImplItem::Type(t) => {
                    members.push(format!(
                        "type {} = {};",
                        t.ident,
                        tidy(t.ty.to_token_stream())
                    ));
                }
                ImplItem::Const(c) if !inherent || is_pub(&c.vis) => {
                    members.push(format!(
                        "const {}: {};",
                        c.ident,
                        tidy(c.ty.to_token_stream())
                    ));
                }
                _ => {}
            }
        }
        if members.is_empty() {
            if !inherent {
                self.line(format!("{head} {{}}"));
            }
            return;
        }
        self.line(format!("{head} {{"));
        self.depth += 1;
        for m in members {
            self.line(m);
        }
        self.depth -= 1;
        self.line("}");
    }
}

/// The attributes of an item worth showing: `derive` and `serde`.
fn shown_attr(attr: &Attribute) -> Option<String> {
    let Meta::List(list) = &attr.meta else {
        return None;
    };
    let name = list.path.get_ident()?.to_string();
    match name.as_str() {
        "derive" => Some(format!("#[derive({})]", tidy(list.tokens.clone()))),
        "serde" => {
            let args = serde_args(list.tokens.clone());
            (!args.is_empty()).then(|| format!("#[serde({})]", args.join(", ")))
        }
        _ => None,
    }
}

/// The `serde` attributes of a field or variant, inline, with a trailing
/// space; `skip_serializing_if` (an encoding detail, not the wire shape)
/// left out.
fn field_attrs(attrs: &[Attribute]) -> String {
    let mut out = String::new();
    for attr in attrs {
        let Meta::List(list) = &attr.meta else {
            continue;
        };
        if !list.path.is_ident("serde") {
            continue;
        }
        let args = serde_args(list.tokens.clone());
        if !args.is_empty() {
            let _ = write!(out, "#[serde({})] ", args.join(", "));
        }
    }
    out
}

/// The comma-separated arguments of a `serde(..)` attribute, tidied, minus
/// `skip_serializing_if`.
fn serde_args(tokens: TokenStream) -> Vec<String> {
    let mut args = Vec::new();
    let mut current = TokenStream::new();
    let mut flush = |current: &mut TokenStream| {
        let arg = tidy(std::mem::take(current));
        if !arg.is_empty() && !arg.starts_with("skip_serializing_if") {
            args.push(arg);
        }
    };
    for tt in tokens {
        match &tt {
            TokenTree::Punct(p) if p.as_char() == ',' => flush(&mut current),
            _ => current.extend([tt]),
        }
    }
    flush(&mut current);
    args
}

/// A token of [`tidy`]'s intermediate form.
enum Tok {
    /// A path or a single word; `std::`/`core::`/`alloc::` paths shortened
    /// to their last segment.
    Path {
        leading: bool,
        segments: Vec<String>,
    },
    /// A literal.
    Literal(String),
    /// A lifetime, `'a`.
    Lifetime(String),
    /// An operator: `::` (outside a path), `->`, `=`, `<`, `&`, ...
    Op(String),
    /// A delimited group.
    Group(Delimiter, Vec<Tok>),
}

/// Renders tokens as compact, conventionally spaced Rust, with standard
/// library paths shortened (`::std::option::Option<T>` becomes
/// `Option<T>`) and other leading `::` dropped.
pub fn tidy(tokens: TokenStream) -> String {
    let toks = lex(tokens);
    let mut out = String::new();
    render(&toks, &mut out);
    out
}

fn lex(tokens: TokenStream) -> Vec<Tok> {
    let trees: Vec<TokenTree> = tokens.into_iter().collect();
    let mut out = Vec::new();
    let mut i = 0;
    // `::` at `trees[i]`?
    let colon2 = |i: usize| {
        matches!((trees.get(i), trees.get(i + 1)),
            (Some(TokenTree::Punct(a)), Some(TokenTree::Punct(b)))
                if a.as_char() == ':' && a.spacing() == Spacing::Joint && b.as_char() == ':')
    };
    while i < trees.len() {
        let leading = colon2(i) && matches!(trees.get(i + 2), Some(TokenTree::Ident(_)));
        if leading || matches!(trees[i], TokenTree::Ident(_)) {
            let mut segments = Vec::new();
            if leading {
                i += 2;
            }
            while let Some(TokenTree::Ident(id)) = trees.get(i) {
                segments.push(id.to_string());
                i += 1;
                if colon2(i) && matches!(trees.get(i + 2), Some(TokenTree::Ident(_))) {
                    i += 2;
                } else {
                    break;
                }
            }
            out.push(Tok::Path { leading, segments });
            continue;
        }
        match &trees[i] {
            TokenTree::Group(g) => out.push(Tok::Group(g.delimiter(), lex(g.stream()))),
            TokenTree::Literal(l) => out.push(Tok::Literal(l.to_string())),
            TokenTree::Punct(p) if p.as_char() == '\'' && p.spacing() == Spacing::Joint => {
                if let Some(TokenTree::Ident(id)) = trees.get(i + 1) {
                    out.push(Tok::Lifetime(format!("'{id}")));
                    i += 2;
                    continue;
                }
                out.push(Tok::Op("'".into()));
            }
            TokenTree::Punct(p) => {
                // Join the operators that are written as one.
                let c = p.as_char();
                let next = match trees.get(i + 1) {
                    Some(TokenTree::Punct(n)) if p.spacing() == Spacing::Joint => Some(n.as_char()),
                    _ => None,
                };
                let op = match (c, next) {
                    (':', Some(':')) | ('-', Some('>')) | ('=', Some('>')) => {
                        i += 1;
                        format!("{c}{}", next.unwrap_or_default())
                    }
                    _ => c.to_string(),
                };
                out.push(Tok::Op(op));
            }
            TokenTree::Ident(_) => {}
        }
        i += 1;
    }
    out
}

fn render(toks: &[Tok], out: &mut String) {
    // What was written last, for spacing.
    #[derive(PartialEq, Clone, Copy)]
    enum Last {
        Start,
        Word,
        Close,
        Tight,
        Spaced,
    }
    let mut last = Last::Start;
    for (idx, tok) in toks.iter().enumerate() {
        let word_gap = |out: &mut String, last: Last| {
            if matches!(last, Last::Word | Last::Close) {
                out.push(' ');
            }
        };
        match tok {
            Tok::Path { leading, segments } => {
                // `<T as Trait>::Assoc` keeps its `::`.
                let qualified = *leading && out.ends_with('>');
                if qualified {
                    out.push_str("::");
                } else {
                    word_gap(out, last);
                }
                let std = !qualified
                    && segments.len() > 1
                    && matches!(segments[0].as_str(), "std" | "core" | "alloc");
                if std {
                    out.push_str(segments.last().map(String::as_str).unwrap_or_default());
                } else {
                    out.push_str(&segments.join("::"));
                }
                last = Last::Word;
            }
            Tok::Literal(l) | Tok::Lifetime(l) => {
                word_gap(out, last);
                out.push_str(l);
                last = Last::Word;
            }
            Tok::Group(delim, inner) => {
                let (open, close) = match delim {
                    Delimiter::Parenthesis => ("(", ")"),
                    Delimiter::Bracket => ("[", "]"),
                    Delimiter::Brace => ("{", "}"),
                    Delimiter::None => ("", ""),
                };
                if *delim == Delimiter::Brace {
                    word_gap(out, last);
                }
                out.push_str(open);
                let mut inner_text = String::new();
                render(inner, &mut inner_text);
                out.push_str(inner_text.trim_end_matches([',', ' ']));
                out.push_str(close);
                last = Last::Close;
            }
            Tok::Op(op) => {
                let next_closes = matches!(toks.get(idx + 1), Some(Tok::Op(o)) if o == ">");
                match op.as_str() {
                    "," => {
                        if !next_closes {
                            out.push_str(", ");
                        }
                        last = Last::Spaced;
                    }
                    ":" | ";" => {
                        out.push_str(op);
                        out.push(' ');
                        last = Last::Spaced;
                    }
                    "=" | "->" | "=>" | "+" => {
                        if !out.ends_with(' ') && !out.is_empty() {
                            out.push(' ');
                        }
                        out.push_str(op);
                        out.push(' ');
                        last = Last::Spaced;
                    }
                    ">" => {
                        out.push('>');
                        last = Last::Close;
                    }
                    "&" | "*" if last == Last::Word || last == Last::Close => {
                        out.push(' ');
                        out.push_str(op);
                        last = Last::Tight;
                    }
                    _ => {
                        out.push_str(op);
                        last = Last::Tight;
                    }
                }
            }
        }
    }
    let trimmed = out.trim_end_matches([',', ' ']).len();
    out.truncate(trimmed);
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    #[test]
    fn tidy_shortens_std_paths_and_spaces_like_rustfmt() {
        let ty = quote!(
            ::std::result::Result<
                ::std::option::Option<::chrono::DateTime<::chrono::offset::Utc>>,
                String,
            >
        );
        assert_eq!(
            tidy(ty),
            "Result<Option<chrono::DateTime<chrono::offset::Utc>>, String>"
        );
    }

    #[test]
    fn tidy_keeps_qualified_paths_and_lifetimes() {
        let sig = quote!(fn body<V>(mut self, value: V) -> Self where V: std::convert::TryInto<types::X>, <V as std::convert::TryInto<types::X>>::Error: std::fmt::Display);
        assert_eq!(
            tidy(sig),
            "fn body<V>(mut self, value: V) -> Self where V: TryInto<types::X>, <V as TryInto<types::X>>::Error: Display"
        );
        assert_eq!(
            tidy(quote!(fn new(client: &'a super::Client) -> Self)),
            "fn new(client: &'a super::Client) -> Self"
        );
        assert_eq!(
            tidy(quote!(fn list(&self) -> builder::List<'_>)),
            "fn list(&self) -> builder::List<'_>"
        );
    }

    #[test]
    fn shape_lists_public_items_only() {
        let code = r#"
            pub mod types {
                #[derive(::serde::Serialize, Clone)]
                #[serde(untagged)]
                pub enum E { #[serde(rename = "a")] A, B(::std::string::String) }
                pub struct N(::std::string::String);
                struct Hidden;
                impl N { pub fn get(&self) -> &str { &self.0 } fn private(&self) {} }
                impl ::std::str::FromStr for N { type Err = String; fn from_str(s: &str) -> Result<Self, String> { todo!() } }
                pub struct S {
                    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
                    pub type_: Option<u8>,
                }
            }
            mod private { pub struct Unseen; }
        "#;
        assert_eq!(
            shape(code).unwrap(),
            r#"pub mod types {
    #[derive(serde::Serialize, Clone)]
    #[serde(untagged)]
    pub enum E {
        #[serde(rename = "a")] A,
        B(String),
    }
    pub struct N(String);
    impl N {
        pub fn get(&self) -> &str;
    }
    impl FromStr for N {
        type Err = String;
    }
    pub struct S {
        #[serde(rename = "type")] pub type_: Option<u8>,
    }
}
"#
        );
    }
}
