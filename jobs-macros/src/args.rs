//! Parsing the attribute's arguments: `#[job_handler("email.send", queue = "emails", ..)]`.
//!
//! Only syntax is checked here (a value of the right kind for each key, no
//! duplicates); what the values mean is `validate.rs`'s job. Errors are
//! collected, and parsing goes on after each, so all of them are reported.

use proc_macro2::{Span, TokenStream};
use syn::ext::IdentExt;
use syn::meta::ParseNestedMeta;
use syn::parse::{ParseStream, Parser};
use syn::spanned::Spanned;
use syn::{Expr, ExprLit, ExprUnary, Ident, Lit, LitInt, LitStr, Path, Token, UnOp};

use crate::ctxt::Ctxt;

/// The option keys, in the order error messages list them.
pub const OPTIONS: &[&str] = &[
    "queue",
    "max_retries",
    "priority",
    "timeout",
    "blocking",
    "backoff",
    "on_failure",
    "unique",
    "concurrency",
    "rate",
    "sequence",
    "cron",
    "timezone",
    "missed",
    "name",
    "crate",
];

/// The attribute's arguments, as written.
#[derive(Default)]
pub struct Args {
    /// `None` when missing or not a string literal (already reported).
    pub job_type: Option<LitStr>,
    pub queue: Attr<LitStr>,
    pub max_retries: Attr<u32>,
    pub priority: Attr<i32>,
    pub timeout: Attr<LitStr>,
    pub blocking: Attr<bool>,
    pub backoff: Attr<Expr>,
    pub on_failure: Attr<Path>,
    pub unique: Attr<KeyedArgs>,
    pub concurrency: Attr<KeyedArgs>,
    pub rate: Attr<KeyedArgs>,
    pub sequence: Attr<KeyedArgs>,
    pub cron: Attr<LitStr>,
    pub timezone: Attr<LitStr>,
    pub missed: Attr<Expr>,
    pub name: Attr<Ident>,
    pub krate: Attr<Path>,
}

/// `unique(by = [field, ..], for = "10m", replace = true)`,
/// `concurrency(by = [..], max = 1)`, `rate(by = [..], max = 100, per = "1m")`,
/// `sequence(by = [..])`: a key made of payload fields, and its settings.
#[derive(Default)]
pub struct KeyedArgs {
    /// The fields the key is made of (`None`: the whole payload for
    /// `unique`, the job type alone for the limits), each as its path
    /// (`order.id`) and its tokens, for errors at the field.
    pub by: Option<Vec<(String, Vec<Ident>)>>,
    /// The `by` list itself, for an error about it as a whole.
    pub by_span: Option<Span>,
    /// `for` (unique) or `per` (rate).
    pub period: Option<LitStr>,
    pub max: Option<u32>,
    pub replace: bool,
}

/// One option: set at most once (serde_derive's `Attr<T>`).
pub struct Attr<T> {
    value: Option<(Span, T)>,
}

impl<T> Default for Attr<T> {
    fn default() -> Self {
        Attr { value: None }
    }
}

impl<T> Attr<T> {
    /// Sets the value, or reports the duplicate at `key`.
    fn set(&mut self, cx: &Ctxt, key: &Path, value: T) {
        if self.value.is_some() {
            cx.error_spanned_by(
                key,
                format!(
                    "duplicate `job_handler` argument `{}`; remove one of them",
                    key_name(key)
                ),
            );
        } else {
            self.value = Some((key.span(), value));
        }
    }

    pub fn get(&self) -> Option<&T> {
        self.value.as_ref().map(|(_, v)| v)
    }

    /// Where the key was written.
    pub fn span(&self) -> Option<Span> {
        self.value.as_ref().map(|(s, _)| *s)
    }
}

fn key_name(path: &Path) -> String {
    quote::quote!(#path).to_string().replace(' ', "")
}

impl Args {
    /// Parses the attribute's tokens, reporting every problem into `cx`.
    pub fn parse(cx: &Ctxt, tokens: TokenStream) -> Args {
        let mut args = Args::default();
        let parser = |input: ParseStream<'_>| -> syn::Result<()> {
            args.parse_job_type(cx, input)?;
            if input.is_empty() {
                return Ok(());
            }
            let rest: TokenStream = input.parse()?;
            let options = syn::meta::parser(|meta| {
                args.parse_option(cx, meta);
                Ok(())
            });
            options.parse2(rest)
        };
        if let Err(e) = parser.parse2(tokens) {
            cx.syn_error(e);
        }
        args
    }

    // #[job_handler("email.send", ..)]
    fn parse_job_type(&mut self, cx: &Ctxt, input: ParseStream<'_>) -> syn::Result<()> {
        const HOW: &str = "the first argument of `#[job_handler]` is the job type as a string literal, e.g. `#[job_handler(\"email.send\")]`";
        if input.is_empty() {
            cx.error_at(Span::call_site(), format!("missing job type; {HOW}"));
            return Ok(());
        }
        if input.peek(LitStr) {
            self.job_type = Some(input.parse()?);
        } else if input.peek(Ident::peek_any) && input.peek2(Token![=]) {
            // Options without a job type: report it, then parse the options.
            cx.error_at(input.span(), format!("missing job type; {HOW}"));
            return Ok(());
        } else {
            let expr: Expr = input.parse()?;
            cx.error_spanned_by(
                &expr,
                format!("the job type must be a string literal; {HOW}"),
            );
        }
        if !input.is_empty() {
            input.parse::<Token![,]>()?;
        }
        Ok(())
    }

    fn parse_option(&mut self, cx: &Ctxt, meta: ParseNestedMeta<'_>) {
        let key = meta.path.clone();
        let Some(name) = key
            .get_ident()
            .map(|i| i.to_string().trim_start_matches("r#").to_owned())
        else {
            return unknown(cx, &meta);
        };
        if !OPTIONS.contains(&name.as_str()) {
            return unknown(cx, &meta);
        }
        let example = example_of(&name);
        if matches!(
            name.as_str(),
            "unique" | "concurrency" | "rate" | "sequence"
        ) {
            return self.parse_keyed(cx, meta, &name);
        }
        let value = match take_value(&meta) {
            Ok(Some(value)) => value,
            Ok(None) => {
                return cx.error_spanned_by(&key, format!("`{name}` needs a value: `{example}`"))
            }
            Err(e) => return cx.syn_error(e),
        };
        let wrong = |what: &str| {
            cx.error_spanned_by(&value, format!("`{name}` takes {what}, e.g. `{example}`"))
        };
        match name.as_str() {
            // #[job_handler("t", queue = "emails")]
            "queue" => match str_lit(&value) {
                Some(s) => self.queue.set(cx, &key, s),
                None => wrong("a string literal"),
            },
            // #[job_handler("t", max_retries = 5)]
            "max_retries" => match int_lit(&value) {
                Some(lit) => match lit.base10_parse::<u32>() {
                    Ok(n) => self.max_retries.set(cx, &key, n),
                    Err(_) => cx.error_spanned_by(
                        &value,
                        format!("`max_retries` must be between 0 and {}", u32::MAX),
                    ),
                },
                None => wrong("a non-negative integer literal"),
            },
            // #[job_handler("t", priority = 10)] / priority = -5
            "priority" => match signed_int(&value) {
                Some(Ok(n)) => self.priority.set(cx, &key, n),
                Some(Err(())) => cx.error_spanned_by(
                    &value,
                    format!("`priority` must be between {} and {}", i32::MIN, i32::MAX),
                ),
                None => wrong("an integer literal"),
            },
            // #[job_handler("t", timeout = "30s")]
            "timeout" => match str_lit(&value) {
                Some(s) => self.timeout.set(cx, &key, s),
                None => wrong("a duration string"),
            },
            // #[job_handler("t", blocking = true)]
            "blocking" => match &value {
                Expr::Lit(ExprLit {
                    lit: Lit::Bool(b), ..
                }) => self.blocking.set(cx, &key, b.value),
                _ => wrong("`true` or `false`"),
            },
            // #[job_handler("t", backoff = Backoff::fixed(Duration::from_secs(5)))]
            "backoff" => self.backoff.set(cx, &key, value),
            // #[job_handler("t", on_failure = email_failed)]
            "on_failure" => match &value {
                Expr::Path(p) if p.qself.is_none() => self.on_failure.set(cx, &key, p.path.clone()),
                _ => wrong("the path of an `async fn`"),
            },
            // #[job_handler("t", cron = "0 3 * * *")]
            "cron" => match str_lit(&value) {
                Some(s) => self.cron.set(cx, &key, s),
                None => wrong("a cron expression as a string literal"),
            },
            // #[job_handler("t", cron = "..", timezone = "Europe/Berlin")]
            "timezone" => match str_lit(&value) {
                Some(s) => self.timezone.set(cx, &key, s),
                None => wrong("an IANA time zone name as a string literal"),
            },
            // #[job_handler("t", cron = "..", missed = MissedRuns::Skip)]
            "missed" => self.missed.set(cx, &key, value),
            // #[job_handler("t", name = SendEmailJob)]
            "name" => match &value {
                Expr::Path(p) if p.qself.is_none() && p.path.get_ident().is_some() => {
                    let ident = p.path.get_ident().cloned().expect("checked");
                    self.name.set(cx, &key, ident)
                }
                _ => wrong("a type name"),
            },
            // #[job_handler("t", crate = jobs_core)] or crate = "jobs_core"
            "crate" => match &value {
                Expr::Path(p) if p.qself.is_none() => self.krate.set(cx, &key, p.path.clone()),
                Expr::Lit(ExprLit {
                    lit: Lit::Str(s), ..
                }) => match s.parse::<Path>() {
                    Ok(path) => self.krate.set(cx, &key, path),
                    Err(_) => wrong("a path"),
                },
                _ => wrong("a path"),
            },
            _ => unreachable!("every key in OPTIONS has an arm"),
        }
    }
}

impl Args {
    // unique / unique(by = [to], for = "10m", replace = true)
    // concurrency(by = [account_id], max = 1)
    // rate(by = [tenant_id], max = 100, per = "1m")
    // sequence / sequence(by = [account_id])
    fn parse_keyed(&mut self, cx: &Ctxt, meta: ParseNestedMeta<'_>, name: &str) {
        let (how, parts, bare_ok): (&str, &[&str], bool) = match name {
            "unique" => (
                "write `unique` (on the whole payload) or `unique(by = [field, ..], for = \"10m\", replace = true)`, each part optional",
                &["by", "for", "replace"],
                true,
            ),
            "concurrency" => (
                "write `concurrency(max = 1)` (per job type) or `concurrency(by = [field, ..], max = 1)` (per value of the fields)",
                &["by", "max"],
                false,
            ),
            "rate" => (
                "write `rate(max = 100, per = \"1m\")` (per job type) or `rate(by = [field, ..], max = 100, per = \"1m\")`",
                &["by", "max", "per"],
                false,
            ),
            _ => (
                "write `sequence` (all jobs of the type in one line) or `sequence(by = [field, ..])` (one line per value)",
                &["by"],
                true,
            ),
        };
        let key = meta.path.clone();
        let mut u = KeyedArgs::default();
        // Parts written at all: one written wrong was reported where it is,
        // and is not reported again as missing.
        let mut written: Vec<String> = Vec::new();
        if meta.input.peek(Token![=]) {
            cx.error_spanned_by(&key, format!("`{name}` takes no `=`; {how}"));
            if let Err(e) = take_value(&meta) {
                cx.syn_error(e);
            }
            return;
        }
        if !meta.input.peek(syn::token::Paren) && !bare_ok {
            cx.error_spanned_by(&key, format!("`{name}` needs its settings; {how}"));
            return;
        }
        if meta.input.peek(syn::token::Paren) {
            let result = meta.parse_nested_meta(|inner| {
                let part = inner
                    .path
                    .get_ident()
                    .map(|i| i.to_string())
                    .unwrap_or_default();
                if !parts.contains(&part.as_str()) {
                    cx.error_spanned_by(
                        &inner.path,
                        format!(
                            "unknown `{name}` argument `{}`; {how}",
                            key_name(&inner.path)
                        ),
                    );
                    if let Err(e) = take_value(&inner) {
                        cx.syn_error(e);
                    }
                    return Ok(());
                }
                let value: Expr = inner.value()?.parse()?;
                written.push(part.clone());
                match part.as_str() {
                    "by" => {
                        u.by_span = Some(value.span());
                        u.by = Some(parse_fields(cx, &value));
                    }
                    "for" | "per" => match str_lit(&value) {
                        Some(s) => u.period = Some(s),
                        None => cx.error_spanned_by(
                            &value,
                            format!("`{part}` takes a duration string, e.g. `{part} = \"10m\"`"),
                        ),
                    },
                    "max" => match int_lit(&value).map(|l| (l, l.base10_parse::<u32>())) {
                        Some((_, Ok(n))) if n >= 1 => u.max = Some(n),
                        Some(_) => cx.error_spanned_by(
                            &value,
                            format!("`max` is at least 1 and at most {}", u32::MAX),
                        ),
                        None => cx.error_spanned_by(
                            &value,
                            "`max` takes an integer literal, e.g. `max = 1`",
                        ),
                    },
                    _ => match &value {
                        Expr::Lit(ExprLit {
                            lit: Lit::Bool(b), ..
                        }) => u.replace = b.value,
                        _ => cx.error_spanned_by(&value, "`replace` takes `true` or `false`"),
                    },
                }
                Ok(())
            });
            if let Err(e) = result {
                cx.syn_error(e);
            }
        }
        let written = |part: &str| written.iter().any(|w| w == part);
        if parts.contains(&"max") && u.max.is_none() && !written("max") {
            cx.error_spanned_by(&key, format!("`{name}` needs `max`; {how}"));
        }
        if name == "rate" && u.period.is_none() && !written("per") {
            cx.error_spanned_by(&key, format!("`rate` needs `per`; {how}"));
        }
        let slot = match name {
            "unique" => &mut self.unique,
            "concurrency" => &mut self.concurrency,
            "rate" => &mut self.rate,
            _ => &mut self.sequence,
        };
        slot.set(cx, &key, u);
    }
}

/// `[to, order.id]` → each field's path and idents; anything else is
/// reported at its tokens.
fn parse_fields(cx: &Ctxt, value: &Expr) -> Vec<(String, Vec<Ident>)> {
    let Expr::Array(list) = value else {
        cx.error_spanned_by(
            value,
            "`by` takes a list of payload fields in brackets, e.g. `by = [recipient]` or `by = [order.id, kind]`",
        );
        return Vec::new();
    };
    let mut out: Vec<(String, Vec<Ident>)> = Vec::new();
    for item in &list.elems {
        let Some(idents) = field_path(item) else {
            cx.error_spanned_by(
                item,
                "expected a field of the payload, e.g. `recipient` or `order.id`",
            );
            continue;
        };
        let path = idents
            .iter()
            .map(|i| i.unraw().to_string())
            .collect::<Vec<_>>()
            .join(".");
        if out.iter().any(|(p, _)| *p == path) {
            cx.error_spanned_by(item, format!("field `{path}` is listed twice in `by`"));
            continue;
        }
        out.push((path, idents));
    }
    if list.elems.is_empty() {
        cx.error_spanned_by(
            value,
            "`by` lists no field; name at least one, or leave `by` out to make the whole payload the key",
        );
    }
    out
}

/// `a` or `a.b.c` as its idents.
fn field_path(expr: &Expr) -> Option<Vec<Ident>> {
    match expr {
        Expr::Path(p) if p.qself.is_none() => Some(vec![p.path.get_ident()?.clone()]),
        Expr::Field(f) => {
            let syn::Member::Named(name) = &f.member else {
                return None;
            };
            let mut base = field_path(&f.base)?;
            base.push(name.clone());
            Some(base)
        }
        _ => None,
    }
}

fn unknown(cx: &Ctxt, meta: &ParseNestedMeta<'_>) {
    let list = OPTIONS
        .iter()
        .map(|o| format!("`{o}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let key = key_name(&meta.path);
    let hint = suggest(&key)
        .map(|o| format!(" (did you mean `{o}`?)"))
        .unwrap_or_default();
    cx.error_spanned_by(
        &meta.path,
        format!("unknown `job_handler` argument `{key}`{hint}; expected one of {list}"),
    );
    // Skip its value so the options after it are still checked.
    if let Err(e) = take_value(meta) {
        cx.syn_error(e);
    }
}

/// The option a misspelt key most likely meant: the closest by edit distance
/// to the option or to one of its `_`-separated words (`retries` → `max_retries`).
fn suggest(key: &str) -> Option<&'static str> {
    OPTIONS
        .iter()
        .filter_map(|o| {
            let d = std::iter::once(*o)
                .chain(o.split('_'))
                .map(|w| distance(key, w))
                .min()?;
            let shared_prefix = std::iter::once(*o)
                .chain(o.split('_'))
                .any(|w| key.get(..4).is_some_and(|k| w.get(..4) == Some(k)));
            (d <= 2 && d * 2 < key.len() || shared_prefix).then_some((d, *o))
        })
        .min()
        .map(|(_, o)| o)
}

fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// The value after `=` (`None` for a bare key); a parenthesized list is skipped.
fn take_value(meta: &ParseNestedMeta<'_>) -> syn::Result<Option<Expr>> {
    if meta.input.peek(Token![=]) {
        Ok(Some(meta.value()?.parse()?))
    } else if meta.input.peek(syn::token::Paren) {
        meta.input.parse::<proc_macro2::Group>()?;
        Ok(None)
    } else {
        Ok(None)
    }
}

fn example_of(name: &str) -> &'static str {
    match name {
        "queue" => "queue = \"emails\"",
        "max_retries" => "max_retries = 5",
        "priority" => "priority = 10",
        "timeout" => "timeout = \"30s\"",
        "blocking" => "blocking = true",
        "backoff" => "backoff = Backoff::exponential(Duration::from_secs(1))",
        "on_failure" => "on_failure = email_failed",
        "unique" => "unique(by = [recipient], for = \"10m\")",
        "concurrency" => "concurrency(by = [account_id], max = 1)",
        "rate" => "rate(by = [tenant_id], max = 100, per = \"1m\")",
        "sequence" => "sequence(by = [account_id])",
        "cron" => "cron = \"0 3 * * *\"",
        "timezone" => "timezone = \"Europe/Berlin\"",
        "missed" => "missed = MissedRuns::Skip",
        "name" => "name = SendEmailJob",
        "crate" => "crate = jobs",
        _ => "",
    }
}

fn str_lit(expr: &Expr) -> Option<LitStr> {
    match expr {
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) => Some(s.clone()),
        _ => None,
    }
}

fn int_lit(expr: &Expr) -> Option<&LitInt> {
    match expr {
        Expr::Lit(ExprLit {
            lit: Lit::Int(i), ..
        }) => Some(i),
        _ => None,
    }
}

/// An integer literal, possibly negated: `Err(())` when out of `i32` range.
fn signed_int(expr: &Expr) -> Option<Result<i32, ()>> {
    match expr {
        Expr::Unary(ExprUnary {
            op: UnOp::Neg(_),
            expr,
            ..
        }) => {
            let lit = int_lit(expr)?;
            Some(
                lit.base10_parse::<i64>()
                    .map_err(|_| ())
                    .and_then(|n| i32::try_from(-n).map_err(|_| ())),
            )
        }
        _ => Some(int_lit(expr)?.base10_parse::<i32>().map_err(|_| ())),
    }
}

#[cfg(test)]
mod tests {
    use super::suggest;

    #[test]
    fn misspelt_options_get_a_suggestion() {
        assert_eq!(suggest("retries"), Some("max_retries"));
        assert_eq!(suggest("retry"), Some("max_retries"));
        assert_eq!(suggest("max_retry"), Some("max_retries"));
        assert_eq!(suggest("queues"), Some("queue"));
        assert_eq!(suggest("timout"), Some("timeout"));
        assert_eq!(suggest("onfailure"), Some("on_failure"));
        assert_eq!(suggest("x"), None);
        assert_eq!(suggest("parallelism"), None);
        assert_eq!(suggest("concurency"), Some("concurrency"));
        assert_eq!(suggest("sequense"), Some("sequence"));
    }
}
