//! Form operations and renamed parameters, on progenitor's output.
//!
//! The normaliser hands progenitor every form operation (see
//! [`crate::normalize`]'s `forms`) as one with a JSON body of the form's
//! text fields, and marks it with [`FORM_EXTENSION`]. progenitor then
//! generates, as for every other operation, the builder with its parameter
//! setters and `body`/`body_map`, the response and error types, and a
//! `send()` that builds the request and runs it through the client's hooks
//! (`ClientHooks::pre`, `exec`, `post`, with the operation's
//! `OperationInfo`). This module edits that builder:
//!
//! - a field and a setter per file part (a `FilePart`: bytes, a path read
//!   as the request is sent, or a stream), required or optional as the
//!   document says, one file or a list;
//! - in `send()`, the JSON body gives way to the form: the text fields of
//!   `body` and the files, encoded by the `forms` runtime module that this
//!   module adds to the generated file once.
//!
//! It also writes back the wire names of parameters the normaliser renamed
//! ([`WIRE_NAME_EXTENSION`]), and, for the second (multipart) method of an
//! operation, the operation's own path and id.

use anyhow::{Context, Result, bail};
use proc_macro2::{Literal, TokenStream, TokenTree};
use quote::{ToTokens, format_ident, quote};
use serde_json::Value;
use syn::visit_mut::{self, VisitMut};
use syn::{
    Expr, ExprLit, Fields, ImplItem, Item, ItemImpl, ItemStruct, Lit, LitStr, Stmt, parse_quote,
};

use crate::normalize::{FORM_EXTENSION, WIRE_NAME_EXTENSION};

/// The body of the generated `forms` module.
const RUNTIME: &str = include_str!("../templates/forms_runtime.rs");

/// The methods of a path item.
const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// What to change in the builder of one operation.
struct Edits {
    /// The operationId, for errors.
    operation_id: String,
    /// progenitor's builder struct.
    builder: String,
    /// `OperationInfo::operation_id` as progenitor writes it.
    info_id: String,
    form: Option<Form>,
    /// Parameters renamed by the normaliser: (name progenitor saw, wire name).
    wire_names: Vec<(String, String)>,
}

struct Form {
    multipart: bool,
    files: Vec<FileField>,
    parts: Vec<PartEncoding>,
    /// The second method of an operation: the original's info id, and the
    /// suffix its path carries.
    twin: Option<(String, String)>,
}

struct FileField {
    name: String,
    field: String,
    multiple: bool,
    required: bool,
    content_type: Option<String>,
    description: Option<String>,
}

struct PartEncoding {
    name: String,
    json: bool,
    delimiter: Option<String>,
    content_type: Option<String>,
}

/// Edits progenitor's tokens for the form operations and renamed
/// parameters of `normalized`. Tokens of a document with neither come
/// back unchanged.
pub fn add_form_methods(tokens: TokenStream, normalized: &Value) -> Result<TokenStream> {
    let edits = collect(normalized)?;
    if edits.is_empty() {
        return Ok(tokens);
    }
    let mut file: syn::File = syn::parse2(tokens).context("progenitor produced unparsable code")?;
    let has_forms = edits.iter().any(|e| e.form.is_some());
    {
        let builder = file
            .items
            .iter_mut()
            .find_map(|item| match item {
                Item::Mod(m) if m.ident == "builder" => m.content.as_mut().map(|(_, items)| items),
                _ => None,
            })
            .context("progenitor's output has no `builder` module")?;
        for e in &edits {
            edit_builder(builder, e)
                .with_context(|| format!("adding the form of operation `{}`", e.operation_id))?;
        }
    }
    if has_forms {
        file.items.push(runtime_module()?);
        if let Some(prelude) = file.items.iter_mut().find_map(|item| match item {
            Item::Mod(m) if m.ident == "prelude" => m.content.as_mut().map(|(_, items)| items),
            _ => None,
        }) {
            prelude.push(parse_quote!(
                pub use super::forms::FilePart;
            ));
        }
    }
    Ok(file.into_token_stream())
}

/// The `forms` module, from the template.
fn runtime_module() -> Result<Item> {
    let runtime: syn::File =
        syn::parse_str(RUNTIME).context("the forms runtime template does not parse")?;
    let attrs = runtime.attrs;
    let items = runtime.items;
    Ok(parse_quote! {
        pub mod forms {
            #(#attrs)*
            #(#items)*
        }
    })
}

fn collect(normalized: &Value) -> Result<Vec<Edits>> {
    let mut out = Vec::new();
    let Some(paths) = normalized.get("paths").and_then(Value::as_object) else {
        return Ok(out);
    };
    for item in paths.values().filter_map(Value::as_object) {
        for method in METHODS {
            let Some(op) = item.get(method) else { continue };
            let Some(id) = op.get("operationId").and_then(Value::as_str) else {
                continue;
            };
            let wire_names: Vec<(String, String)> = op
                .get("parameters")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter(|p| p.get("in").and_then(Value::as_str) != Some("path"))
                .filter_map(|p| {
                    let wire = p.get(WIRE_NAME_EXTENSION)?.as_str()?;
                    let name = p.get("name")?.as_str()?;
                    Some((name.to_owned(), wire.to_owned()))
                })
                .collect();
            let form = op.get(FORM_EXTENSION).map(parse_form).transpose()?;
            if form.is_none() && wire_names.is_empty() {
                continue;
            }
            let info_id = sanitize(id, Case::Snake);
            out.push(Edits {
                operation_id: id.to_owned(),
                builder: sanitize(&info_id, Case::Pascal),
                info_id,
                form,
                wire_names,
            });
        }
    }
    Ok(out)
}

fn parse_form(ext: &Value) -> Result<Form> {
    let text = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).map(str::to_owned);
    let multipart = match ext.get("mediaType").and_then(Value::as_str) {
        Some("multipart/form-data") => true,
        Some("application/x-www-form-urlencoded") => false,
        other => bail!("{FORM_EXTENSION} has an unknown media type {other:?}"),
    };
    let mut files = Vec::new();
    for f in ext
        .get("files")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let (Some(name), Some(field)) = (text(f, "name"), text(f, "field")) else {
            bail!("{FORM_EXTENSION} has a file without a name: {f}");
        };
        if syn::parse_str::<syn::Ident>(&field).is_err() {
            bail!("{FORM_EXTENSION}: `{field}` is not a Rust identifier");
        }
        files.push(FileField {
            name,
            field,
            multiple: f.get("multiple").and_then(Value::as_bool).unwrap_or(false),
            required: f.get("required").and_then(Value::as_bool).unwrap_or(false),
            content_type: text(f, "contentType"),
            description: text(f, "description"),
        });
    }
    let parts = ext
        .get("parts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| {
            Some(PartEncoding {
                name: text(p, "name")?,
                json: p.get("json").and_then(Value::as_bool).unwrap_or(false),
                delimiter: text(p, "delimiter"),
                content_type: text(p, "contentType"),
            })
        })
        .collect();
    let twin = match (text(ext, "twinOf"), text(ext, "pathSuffix")) {
        (Some(original), Some(suffix)) => Some((sanitize(&original, Case::Snake), suffix)),
        _ => None,
    };
    Ok(Form {
        multipart,
        files,
        parts,
        twin,
    })
}

fn edit_builder(items: &mut [Item], e: &Edits) -> Result<()> {
    let mut has_body = false;
    let mut found_struct = false;
    for item in items.iter_mut() {
        if let Item::Struct(s) = item
            && s.ident == e.builder
        {
            has_body = struct_has_field(s, "body");
            if let Some(form) = &e.form {
                edit_struct(s, form)?;
            }
            found_struct = true;
        }
    }
    if !found_struct {
        bail!("progenitor's output has no builder `{}`", e.builder);
    }
    let imp = items
        .iter_mut()
        .find_map(|item| match item {
            Item::Impl(i)
                if i.trait_.is_none() && impl_of(i).as_deref() == Some(e.builder.as_str()) =>
            {
                Some(i)
            }
            _ => None,
        })
        .with_context(|| format!("progenitor's output has no impl of `{}`", e.builder))?;
    if let Some(form) = &e.form {
        edit_new(imp, form)?;
        add_setters(imp, form);
    }
    let send = imp
        .items
        .iter_mut()
        .find_map(|i| match i {
            ImplItem::Fn(f) if f.sig.ident == "send" => Some(f),
            _ => None,
        })
        .with_context(|| format!("`{}` has no `send`", e.builder))?;
    if let Some(form) = &e.form {
        edit_send(&mut send.block.stmts, form, has_body)?;
        if let Some((original, suffix)) = &form.twin {
            let mut lits = ReplaceLiteral {
                from: e.info_id.clone(),
                to: original.clone(),
                hits: 0,
            };
            lits.visit_block_mut(&mut send.block);
            let mut url = StripSuffix {
                suffix: suffix.clone(),
                hits: 0,
            };
            url.visit_block_mut(&mut send.block);
            if lits.hits != 1 || url.hits != 1 {
                bail!(
                    "the second method's id or path was not where progenitor writes them ({} ids, {} paths)",
                    lits.hits,
                    url.hits
                );
            }
        }
    }
    for (name, wire) in &e.wire_names {
        let mut lits = ReplaceLiteral {
            from: name.clone(),
            to: wire.clone(),
            hits: 0,
        };
        lits.visit_block_mut(&mut send.block);
        if lits.hits == 0 {
            bail!(
                "the renamed parameter `{wire}` (`{name}`) is not sent by `{}`",
                e.builder
            );
        }
    }
    Ok(())
}

/// The name of the type an impl is of.
fn impl_of(i: &ItemImpl) -> Option<String> {
    match &*i.self_ty {
        syn::Type::Path(p) => p.path.segments.last().map(|s| s.ident.to_string()),
        _ => None,
    }
}

fn struct_has_field(s: &ItemStruct, name: &str) -> bool {
    match &s.fields {
        Fields::Named(named) => named
            .named
            .iter()
            .any(|f| f.ident.as_ref().is_some_and(|i| i == name)),
        _ => false,
    }
}

fn file_type(f: &FileField) -> TokenStream {
    match (f.multiple, f.required) {
        (true, _) => quote!(Result<Vec<super::forms::FilePart>, String>),
        (false, true) => quote!(Result<super::forms::FilePart, String>),
        (false, false) => quote!(Result<Option<super::forms::FilePart>, String>),
    }
}

fn edit_struct(s: &mut ItemStruct, form: &Form) -> Result<()> {
    let Fields::Named(named) = &mut s.fields else {
        bail!("the builder `{}` has no named fields", s.ident);
    };
    for f in &form.files {
        let ident = format_ident!("{}", f.field);
        let ty = file_type(f);
        named.named.push(parse_quote!(#ident: #ty));
    }
    if !form.files.is_empty() {
        // A file part may be a stream, which cannot be cloned.
        for attr in &mut s.attrs {
            if attr.path().is_ident("derive") {
                let derives = attr.parse_args_with(
                    syn::punctuated::Punctuated::<syn::Path, syn::Token![,]>::parse_terminated,
                )?;
                let kept: Vec<&syn::Path> =
                    derives.iter().filter(|p| !p.is_ident("Clone")).collect();
                *attr = parse_quote!(#[derive(#(#kept),*)]);
            }
        }
    }
    let note = if form.multipart {
        "\nThe request body is sent as `multipart/form-data`: the text fields set \
         with `body`/`body_map` (a list as one part per item, an object as a JSON \
         part), each file with its own setter. A request whose files are all \
         `FilePart::bytes` is sent as one buffer and can be retried; a file read \
         from a path or a stream is read once, as the request is sent: such a \
         request cannot be cloned, and gets one attempt."
    } else {
        "\nThe request body is sent as `application/x-www-form-urlencoded`: a list \
         as one field per item, an object as JSON text."
    };
    let position = s
        .attrs
        .iter()
        .rposition(|a| a.path().is_ident("doc"))
        .map_or(0, |i| i + 1);
    s.attrs.insert(position, parse_quote!(#[doc = #note]));
    Ok(())
}

fn edit_new(imp: &mut ItemImpl, form: &Form) -> Result<()> {
    let new = imp
        .items
        .iter_mut()
        .find_map(|i| match i {
            ImplItem::Fn(f) if f.sig.ident == "new" => Some(f),
            _ => None,
        })
        .context("the builder has no `new`")?;
    let Some(Stmt::Expr(Expr::Struct(init), None)) = new.block.stmts.last_mut() else {
        bail!("the builder's `new` does not end with a struct expression");
    };
    for f in &form.files {
        let ident = format_ident!("{}", f.field);
        let value: Expr = match (f.multiple, f.required) {
            (true, _) => parse_quote!(Ok(Vec::new())),
            (false, true) => {
                let message = format!("{} was not initialized", f.field);
                parse_quote!(Err(#message.to_string()))
            }
            (false, false) => parse_quote!(Ok(None)),
        };
        init.fields.push(parse_quote!(#ident: #value));
    }
    Ok(())
}

fn add_setters(imp: &mut ItemImpl, form: &Form) {
    let position = imp
        .items
        .iter()
        .position(|i| matches!(i, ImplItem::Fn(f) if f.sig.ident == "send"))
        .unwrap_or(imp.items.len());
    let setters: Vec<ImplItem> = form
        .files
        .iter()
        .map(|f| {
            let ident = format_ident!("{}", f.field);
            let mut doc = format!(
                "Sets the file part `{}` ({}{}): a [`FilePart`](super::forms::FilePart) \
                 (bytes, a path read as the request is sent, or a stream).",
                f.name,
                if f.required { "required" } else { "optional" },
                if f.multiple {
                    ", one part per file"
                } else {
                    ""
                },
            );
            if let Some(ct) = &f.content_type {
                doc.push_str(&format!(
                    " Its media type is `{ct}` unless the part says otherwise."
                ));
            }
            if let Some(d) = &f.description {
                doc.push_str("\n\n");
                doc.push_str(d);
            }
            if f.multiple {
                parse_quote! {
                    #[doc = #doc]
                    pub fn #ident<I>(mut self, files: I) -> Self
                    where
                        I: IntoIterator,
                        I::Item: Into<super::forms::FilePart>,
                    {
                        self.#ident = Ok(files.into_iter().map(Into::into).collect());
                        self
                    }
                }
            } else {
                let value = if f.required {
                    quote!(Ok(value.into()))
                } else {
                    quote!(Ok(Some(value.into())))
                };
                parse_quote! {
                    #[doc = #doc]
                    pub fn #ident<V>(mut self, value: V) -> Self
                    where
                        V: Into<super::forms::FilePart>,
                    {
                        self.#ident = #value;
                        self
                    }
                }
            }
        })
        .collect();
    imp.items.splice(position..position, setters);
}

fn option_str(value: Option<&str>) -> TokenStream {
    match value {
        Some(v) => quote!(::std::option::Option::Some(#v)),
        None => quote!(::std::option::Option::None),
    }
}

/// Destructures the file fields too, checks them, builds the form before
/// the request, and sends it instead of the JSON body.
fn edit_send(stmts: &mut Vec<Stmt>, form: &Form, has_body: bool) -> Result<()> {
    // `let Self { client, a, body } = self;`
    let Some(Stmt::Local(destructure)) = stmts.first() else {
        bail!("`send` does not start by destructuring the builder");
    };
    let syn::Pat::Struct(pattern) = &destructure.pat else {
        bail!("`send` does not start by destructuring the builder");
    };
    let mut names: Vec<syn::Member> = pattern.fields.iter().map(|f| f.member.clone()).collect();
    names.extend(
        form.files
            .iter()
            .map(|f| syn::Member::Named(format_ident!("{}", f.field))),
    );
    stmts[0] = parse_quote!(let Self { #(#names),* } = self;);
    let checks: Vec<Stmt> = form
        .files
        .iter()
        .map(|f| {
            let ident = format_ident!("{}", f.field);
            parse_quote!(let #ident = #ident.map_err(Error::InvalidRequest)?;)
        })
        .collect();
    stmts.splice(1..1, checks);

    let request_at = stmts
        .iter()
        .position(|s| {
            let mut finder = FindBuild(false);
            finder.visit_stmt_mut(&mut s.clone());
            matches!(s, Stmt::Local(_)) && finder.0
        })
        .context("`send` builds no request")?;
    let mut attach = AttachForm {
        removed_json: false,
        attached: false,
    };
    attach.visit_stmt_mut(&mut stmts[request_at]);
    if !attach.attached || attach.removed_json != has_body {
        bail!(
            "the request of `send` is not built as progenitor writes it (JSON body removed: {}, form attached: {})",
            attach.removed_json,
            attach.attached
        );
    }

    let constructor = if form.multipart {
        quote!(multipart)
    } else {
        quote!(urlencoded)
    };
    let fields = has_body.then(|| {
        let encodings = form.parts.iter().map(|p| {
            let name = &p.name;
            let json = p.json;
            let delimiter = option_str(p.delimiter.as_deref());
            let content_type = option_str(p.content_type.as_deref());
            quote! {
                super::forms::FieldEncoding {
                    name: #name,
                    json: #json,
                    delimiter: #delimiter,
                    content_type: #content_type,
                }
            }
        });
        quote!(.fields(&body, &[#(#encodings),*]).map_err(Error::InvalidRequest)?)
    });
    let files = form.files.iter().map(|f| {
        let name = &f.name;
        let ident = format_ident!("{}", f.field);
        let content_type = option_str(f.content_type.as_deref());
        let call = match (f.multiple, f.required) {
            (true, required) => quote!(.files(#name, #ident, #required, #content_type)),
            (false, true) => quote!(.file(#name, #ident, #content_type)),
            (false, false) => quote!(.optional_file(#name, #ident, #content_type)),
        };
        quote!(#call.await.map_err(Error::InvalidRequest)?)
    });
    let build: Stmt = parse_quote! {
        let __form = super::forms::FormBuilder::#constructor()
            #fields
            #(#files)*
            .finish()
            .await
            .map_err(Error::InvalidRequest)?;
    };
    stmts.insert(request_at, build);
    Ok(())
}

/// Whether a statement calls `.build()`.
struct FindBuild(bool);

impl VisitMut for FindBuild {
    fn visit_expr_method_call_mut(&mut self, call: &mut syn::ExprMethodCall) {
        if call.method == "build" {
            self.0 = true;
        }
        visit_mut::visit_expr_method_call_mut(self, call);
    }
}

/// In the request chain, removes `.json(&body)` and hands the builder to
/// the form before `.build()`.
struct AttachForm {
    removed_json: bool,
    attached: bool,
}

impl VisitMut for AttachForm {
    fn visit_expr_mut(&mut self, expr: &mut Expr) {
        visit_mut::visit_expr_mut(self, expr);
        let Expr::MethodCall(call) = expr else {
            return;
        };
        if call.method == "json" && !self.removed_json {
            let receiver = (*call.receiver).clone();
            *expr = receiver;
            self.removed_json = true;
        } else if call.method == "build" && !self.attached {
            let receiver = &call.receiver;
            *call.receiver = parse_quote!(__form.attach(#receiver).map_err(Error::InvalidRequest)?);
            self.attached = true;
        }
    }
}

/// Replaces a string literal equal to `from` by `to`.
struct ReplaceLiteral {
    from: String,
    to: String,
    hits: usize,
}

impl VisitMut for ReplaceLiteral {
    fn visit_expr_lit_mut(&mut self, lit: &mut ExprLit) {
        if let Lit::Str(s) = &lit.lit
            && s.value() == self.from
        {
            lit.lit = Lit::Str(LitStr::new(&self.to, s.span()));
            self.hits += 1;
        }
    }
}

/// Strips `suffix` from the end of a string literal in a macro's tokens
/// (the URL's `format!`).
struct StripSuffix {
    suffix: String,
    hits: usize,
}

impl StripSuffix {
    fn tokens(&mut self, tokens: TokenStream) -> TokenStream {
        tokens
            .into_iter()
            .map(|tt| match tt {
                TokenTree::Literal(lit) => {
                    let tree = TokenTree::Literal(lit.clone());
                    match syn::parse2::<LitStr>(tree.clone().into()) {
                        Ok(s) if s.value().ends_with(&self.suffix) => {
                            self.hits += 1;
                            let value = s.value();
                            let stripped = &value[..value.len() - self.suffix.len()];
                            let mut new = Literal::string(stripped);
                            new.set_span(lit.span());
                            TokenTree::Literal(new)
                        }
                        _ => tree,
                    }
                }
                TokenTree::Group(g) => {
                    let mut group = proc_macro2::Group::new(g.delimiter(), self.tokens(g.stream()));
                    group.set_span(g.span());
                    TokenTree::Group(group)
                }
                other => other,
            })
            .collect()
    }
}

impl VisitMut for StripSuffix {
    fn visit_macro_mut(&mut self, mac: &mut syn::Macro) {
        mac.tokens = self.tokens(std::mem::take(&mut mac.tokens));
    }
}

/// progenitor's case conversions.
#[derive(Clone, Copy)]
enum Case {
    Pascal,
    Snake,
}

/// The name progenitor makes of an operationId: its `util::sanitize`
/// (heck's case conversion, a leading `_` where the name cannot start an
/// identifier, a trailing `_` on a keyword).
fn sanitize(input: &str, case: Case) -> String {
    use heck::{ToPascalCase, ToSnakeCase};
    let to_case = |s: &str| match case {
        Case::Pascal => s.to_pascal_case(),
        Case::Snake => s.to_snake_case(),
    };
    let out = match input {
        "+1" => "plus1".to_owned(),
        "-1" => "minus1".to_owned(),
        _ => to_case(
            &input
                .replace('\'', "")
                .replace(|c: char| !(c.is_alphanumeric() || c == '_'), "-"),
        ),
    };
    let out = match out.chars().next() {
        None => to_case("x"),
        Some(c) if c.is_alphabetic() || c == '_' => out,
        Some(_) => format!("_{out}"),
    };
    if is_keyword(&out) {
        format!("{out}_")
    } else {
        out
    }
}

/// typify's `accept_as_ident`, negated.
fn is_keyword(ident: &str) -> bool {
    matches!(
        ident,
        "_" | "abstract"
            | "as"
            | "async"
            | "await"
            | "become"
            | "box"
            | "break"
            | "const"
            | "continue"
            | "crate"
            | "do"
            | "dyn"
            | "else"
            | "enum"
            | "extern"
            | "false"
            | "final"
            | "fn"
            | "for"
            | "gen"
            | "if"
            | "impl"
            | "in"
            | "let"
            | "loop"
            | "macro"
            | "match"
            | "mod"
            | "move"
            | "mut"
            | "override"
            | "priv"
            | "pub"
            | "ref"
            | "return"
            | "Self"
            | "self"
            | "static"
            | "struct"
            | "super"
            | "trait"
            | "true"
            | "try"
            | "type"
            | "typeof"
            | "unsafe"
            | "unsized"
            | "use"
            | "virtual"
            | "where"
            | "while"
            | "yield"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_progenitor() {
        assert_eq!(
            sanitize("createImageEdit", Case::Snake),
            "create_image_edit"
        );
        assert_eq!(
            sanitize(&sanitize("createImageEdit", Case::Snake), Case::Pascal),
            "CreateImageEdit"
        );
        assert_eq!(sanitize("2fa.enable", Case::Snake), "_2fa_enable");
        assert_eq!(sanitize("type", Case::Snake), "type_");
        assert_eq!(
            sanitize("create-dataset_multipart", Case::Snake),
            "create_dataset_multipart"
        );
    }

    #[test]
    fn the_runtime_template_parses() {
        let module = runtime_module().unwrap();
        let text = module.into_token_stream().to_string();
        assert!(text.contains("pub struct FilePart"), "{text}");
    }

    #[test]
    fn a_suffix_is_stripped_from_a_format_literal() {
        let mut block: syn::Block = parse_quote!({
            let url = format!("{}/images/edits#multipart", client.baseurl);
        });
        let mut strip = StripSuffix {
            suffix: "#multipart".into(),
            hits: 0,
        };
        strip.visit_block_mut(&mut block);
        assert_eq!(strip.hits, 1);
        let text = block.into_token_stream().to_string();
        assert!(text.contains("\"{}/images/edits\""), "{text}");
    }
}
