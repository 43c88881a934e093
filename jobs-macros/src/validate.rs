//! What the arguments and the function must be; every problem is reported,
//! spanned on the tokens at fault and saying how to fix it.

use syn::{FnArg, GenericParam, Pat, Type};

use crate::args::Args;
use crate::ast::{
    extractor_name, first_borrow, last_segment, type_text, Extractor, Handler, Named,
};
use crate::ctxt::Ctxt;

const JOB_TYPE_GRAMMAR: &str = "a job type is lowercase dot-separated segments of `a-z`, `0-9`, `_` and `-`, e.g. `\"email.send\"`";

/// Checks everything; returns whether the payload type itself is usable, so
/// the fallback expansion implements `JobPayload` for it only then (an
/// unusable payload would add errors of its own to the one reported).
pub fn validate(cx: &Ctxt, args: &Args, handler: &Handler<'_>) -> bool {
    if let Some(lit) = &args.job_type {
        if let Err(why) = check_job_type(&lit.value()) {
            cx.error_spanned_by(lit, why);
        }
    }
    if let Some(queue) = args.queue.get() {
        let q = queue.value();
        if q.is_empty() || q.len() > 255 || q.chars().any(|c| c.is_whitespace() || c.is_control()) {
            cx.error_spanned_by(
                queue,
                format!("invalid queue name {q:?}; a queue name is 1 to 255 characters without whitespace, e.g. `queue = \"emails\"`"),
            );
        }
    }
    if let Some(timeout) = args.timeout.get().filter(|t| t.value() != "none") {
        if let Err(why) = parse_duration(&timeout.value()) {
            cx.error_spanned_by(
                timeout,
                format!("invalid `timeout` {:?}: {why}", timeout.value()),
            );
        }
    }
    validate_schedule(cx, args);
    if args.blocking.get() == Some(&true) {
        for ex in &handler.extractors {
            if let Extractor::Borrowed(ty) = ex {
                cx.error_spanned_by(
                    ty,
                    format!(
                        "with `blocking = true` the handler runs on a thread of tokio's blocking pool and cannot borrow from the job; take `{}` by value",
                        quote::quote!(#ty).to_string().replace(' ', "")
                    ),
                );
            }
        }
    }
    validate_signature(cx, handler)
}

fn validate_signature(cx: &Ctxt, handler: &Handler<'_>) -> bool {
    let sig = &handler.item.sig;
    if let Some(c) = &sig.constness {
        cx.error_spanned_by(
            c,
            "`#[job_handler]` functions cannot be `const`; remove `const`",
        );
    }
    if sig.asyncness.is_none() {
        cx.error_spanned_by(
            sig.fn_token,
            "`#[job_handler]` functions must be `async`; write `async fn`",
        );
    }
    if let Some(u) = &sig.unsafety {
        cx.error_spanned_by(
            u,
            "`#[job_handler]` functions cannot be `unsafe`: the worker has no way to uphold their contract; remove `unsafe`",
        );
    }
    if let Some(abi) = &sig.abi {
        cx.error_spanned_by(
            abi,
            "`#[job_handler]` functions cannot have an `extern` ABI; remove it",
        );
    }
    let payload_borrows = handler.payload.and_then(first_borrow).is_some();
    let only_lifetimes = sig
        .generics
        .params
        .iter()
        .all(|p| matches!(p, GenericParam::Lifetime(_)));
    // `async fn f<'a>(g: Greet<'a>)`: the borrow in the payload is the mistake
    // (reported below); the lifetime parameter only serves it.
    let lifetimes_for_payload =
        only_lifetimes && payload_borrows && sig.generics.where_clause.is_none();
    if (!sig.generics.params.is_empty() || sig.generics.where_clause.is_some())
        && !lifetimes_for_payload
    {
        let at = if sig.generics.params.is_empty() {
            quote::ToTokens::to_token_stream(&sig.generics.where_clause)
        } else {
            quote::ToTokens::to_token_stream(&sig.generics)
        };
        cx.error_spanned_by(
            at,
            "`#[job_handler]` functions cannot be generic: the worker needs one concrete payload type to deserialize into; remove the generic parameters",
        );
    }
    if let Some(v) = &sig.variadic {
        cx.error_spanned_by(v, "`#[job_handler]` functions cannot be variadic");
    }
    for arg in &sig.inputs {
        if let FnArg::Receiver(r) = arg {
            cx.error_spanned_by(
                r,
                "`#[job_handler]` cannot be used on methods: a handler is a free `async fn` whose first argument is the payload; move it out of the `impl` and inject shared state with `Data<T>`",
            );
            return false;
        }
    }
    let typed: Vec<(&Pat, &Type)> = sig
        .inputs
        .iter()
        .filter_map(|arg| match arg {
            FnArg::Typed(p) => Some((&*p.pat, &*p.ty)),
            FnArg::Receiver(_) => None,
        })
        .collect();
    let Some(&(first_pat, first)) = typed.first() else {
        cx.error_at(
            sig.paren_token.span.join(),
            format!(
                "missing payload argument: the first argument of a `#[job_handler]` function is the payload, e.g. `async fn {}(email: SendEmail)`",
                sig.ident
            ),
        );
        return false;
    };
    let rest = &typed[1..];
    let payload_ok = if let Some(hint) = extractor_first(sig, first_pat, first, rest) {
        cx.error_spanned_by(first, hint);
        false
    } else if let Type::Reference(r) = first {
        cx.error_spanned_by(
            r,
            "the payload is deserialized for each attempt and handed over by value; take it as `T`, not `&T`",
        );
        false
    } else if let Some(lifetime) = first_borrow(first) {
        let name = last_segment(first).map_or_else(|| type_text(first), |(i, _)| i.to_string());
        cx.error_spanned_by(
            lifetime,
            format!(
                "a payload cannot borrow: it is deserialized anew for every attempt and owned by the handler; give `{name}` owned fields (`String`, not `&str`; `Vec<T>`, not `&[T]`) and remove its lifetime `{lifetime}`"
            ),
        );
        false
    } else {
        check_nameable(cx, first, "payload")
    };
    for &(_, ty) in rest {
        match ty {
            Type::Reference(r) if r.mutability.is_some() => cx.error_spanned_by(
                r,
                "injected arguments cannot be `&mut`; take `&T` (for `Job`, `JobContext`) or the extractor by value",
            ),
            Type::Reference(r) => {
                check_nameable(cx, &r.elem, "argument");
            }
            ty => {
                if check_nameable(cx, ty, "argument") {
                    check_wrapper(cx, ty);
                }
            }
        }
    }
    payload_ok
}

/// The first argument is an extractor, not a payload: `async fn f(ctx:
/// JobContext, email: SendEmail)`. `Job` and `Queue` count only when a later
/// argument is not an extractor (a payload type of the user's may be called
/// `Job`).
fn extractor_first(
    sig: &syn::Signature,
    first_pat: &Pat,
    first: &Type,
    rest: &[(&Pat, &Type)],
) -> Option<String> {
    let payload = rest
        .iter()
        .find(|(_, ty)| extractor_name(ty).is_none() && !matches!(ty, Type::Reference(_)));
    match (extractor_name(first)?, payload) {
        (Named::Ambiguous, None) => return None,
        (Named::Extractor | Named::Ambiguous, _) => {}
    }
    let arg = |pat: &Pat, ty: &Type| format!("{}: {}", quote::quote!(#pat), type_text(ty));
    let example = match payload {
        Some((pat, ty)) => {
            let mut args = vec![arg(pat, ty), arg(first_pat, first)];
            args.extend(
                rest.iter()
                    .filter(|(p, _)| !std::ptr::eq(*p, *pat))
                    .map(|(p, t)| arg(p, t)),
            );
            format!("async fn {}({})", sig.ident, args.join(", "))
        }
        None => format!(
            "async fn {}(email: SendEmail, {})",
            sig.ident,
            arg(first_pat, first)
        ),
    };
    Some(format!(
        "the first argument of a `#[job_handler]` function is the payload, and `{}` is an extractor: put the payload first, e.g. `{example}`",
        type_text(first)
    ))
}

/// `Arc<T>` and `Option<T>` can be extractors only as `Arc<Job>` and
/// `Option<Data<T>>` (no other impl is allowed by the orphan rule), so any
/// other is a mistake with a known fix.
fn check_wrapper(cx: &Ctxt, ty: &Type) {
    let Some((ident, args)) = last_segment(ty) else {
        return;
    };
    let Some(inner) = args.first().copied() else {
        return;
    };
    let inner_text = type_text(inner);
    let inner_name = last_segment(inner).map(|(i, _)| i.to_string());
    if ident == "Arc" && inner_name.as_deref() != Some("Job") {
        cx.error_spanned_by(
            ty,
            format!(
                "`{}` cannot be injected into a job handler: a shared service is `Data<{inner_text}>` (an `Arc` inside); give the builder the service with `.data(..)`, or the `Arc` you hold with `.data_arc(..)`",
                type_text(ty)
            ),
        );
    } else if ident == "Option" && inner_name.as_deref() != Some("Data") {
        cx.error_spanned_by(
            ty,
            format!(
                "`{}` cannot be injected into a job handler: an optional service is `Option<Data<{inner_text}>>` (`None` when the manager was given no `{inner_text}`)",
                type_text(ty)
            ),
        );
    }
}

/// `impl Trait` and `_` in argument position would make the handler generic.
/// Returns whether the type is fine.
fn check_nameable(cx: &Ctxt, ty: &Type, what: &str) -> bool {
    match ty {
        Type::ImplTrait(_) => cx.error_spanned_by(
            ty,
            format!("`impl Trait` makes a `#[job_handler]` function generic; give the {what} a concrete type"),
        ),
        Type::Infer(_) => cx.error_spanned_by(ty, format!("give the {what} a concrete type")),
        _ => return true,
    }
    false
}

/// The job type grammar: `segment(.segment)*`, segments of `[a-z0-9_-]+`, at
/// most 255 bytes.
pub fn check_job_type(job_type: &str) -> Result<(), String> {
    if job_type.is_empty() {
        return Err(format!(
            "the job type must not be empty; {JOB_TYPE_GRAMMAR}"
        ));
    }
    if job_type.len() > 255 {
        return Err(format!(
            "the job type is {} bytes long; the limit is 255",
            job_type.len()
        ));
    }
    if let Some(c) = job_type
        .chars()
        .find(|c| !matches!(c, 'a'..='z' | '0'..='9' | '_' | '-' | '.'))
    {
        let hint = if c.is_ascii_uppercase() {
            format!(" (write `{}`)", job_type.to_ascii_lowercase())
        } else {
            String::new()
        };
        return Err(format!(
            "invalid job type `{job_type}`: {c:?} is not allowed{hint}; {JOB_TYPE_GRAMMAR}"
        ));
    }
    if job_type.split('.').any(str::is_empty) {
        return Err(format!(
            "invalid job type `{job_type}`: empty segment; {JOB_TYPE_GRAMMAR}"
        ));
    }
    Ok(())
}

/// `"30s"`, `"500ms"`, `"2m"`, `"1h30m"` → milliseconds.
pub fn parse_duration(text: &str) -> Result<u64, String> {
    const HOW: &str = "expected numbers with units `ms`, `s`, `m` or `h`, e.g. `\"30s\"`, `\"500ms\"`, `\"2m\"`, `\"1h30m\"`, or `\"none\"` for no timeout";
    parse_millis(text).map_err(|e| match e {
        DurationError::Syntax => HOW.to_owned(),
        DurationError::Zero => {
            "a timeout must be longer than zero; write `timeout = \"none\"` for no timeout"
                .to_owned()
        }
        DurationError::TooLarge(why) => why.to_owned(),
    })
}

/// A unique period: `"10m"`, `"1h"`, at least a second.
pub fn parse_period(text: &str) -> Result<u64, String> {
    const HOW: &str = "expected numbers with units `s`, `m` or `h`, e.g. `\"30s\"`, `\"10m\"`, `\"1h\"`, `\"24h\"`";
    match parse_millis(text) {
        Ok(ms) if ms < 1000 => Err("a unique period is at least a second (`\"1s\"`)".to_owned()),
        Ok(ms) => Ok(ms),
        Err(DurationError::Syntax) => Err(HOW.to_owned()),
        Err(DurationError::Zero) => Err("a unique period must be longer than zero".to_owned()),
        Err(DurationError::TooLarge(why)) => Err(why.to_owned()),
    }
}

pub enum DurationError {
    Syntax,
    Zero,
    TooLarge(&'static str),
}

pub fn parse_millis(text: &str) -> Result<u64, DurationError> {
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(DurationError::Syntax);
    }
    let mut total: u64 = 0;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(DurationError::Syntax);
        }
        let n: u64 = rest[..digits]
            .parse()
            .map_err(|_| DurationError::TooLarge("number too large"))?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let factor = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            _ => return Err(DurationError::Syntax),
        };
        rest = &rest[unit_len..];
        total = n
            .checked_mul(factor)
            .and_then(|ms| total.checked_add(ms))
            .ok_or(DurationError::TooLarge("duration too large"))?;
    }
    if total == 0 {
        return Err(DurationError::Zero);
    }
    Ok(total)
}

/// The schedule's options: a cron expression that parses, a time zone that
/// exists, and neither `timezone` nor `missed` without `cron`.
fn validate_schedule(cx: &Ctxt, args: &Args) {
    if let Some(cron) = args.cron.get() {
        let parsed = croner::parser::CronParser::builder()
            .seconds(croner::parser::Seconds::Optional)
            .build()
            .parse(&cron.value());
        if let Err(e) = parsed {
            cx.error_spanned_by(
                cron,
                format!(
                    "invalid cron expression {:?}: {e}; five fields (minute hour day-of-month month day-of-week, e.g. `\"0 3 * * *\"`), six with seconds first, or `@hourly`, `@daily`, `@weekly`, `@monthly`, `@yearly`",
                    cron.value()
                ),
            );
        }
    }
    if let Some(tz) = args.timezone.get() {
        if tz.value().parse::<chrono_tz::Tz>().is_err() {
            cx.error_spanned_by(
                tz,
                format!(
                    "unknown time zone {:?}; use an IANA name such as `\"Europe/Berlin\"`, `\"America/New_York\"` or `\"UTC\"`",
                    tz.value()
                ),
            );
        }
    }
    if args.cron.get().is_none() {
        for (key, span) in [
            ("timezone", args.timezone.span()),
            ("missed", args.missed.span()),
        ] {
            if let Some(span) = span {
                cx.error_at(
                    span,
                    format!("`{key}` belongs to a schedule: add `cron = \"..\"` (e.g. `cron = \"0 3 * * *\"`), or remove `{key}`"),
                );
            }
        }
    }
    if let Some(period) = args.unique.get().and_then(|u| u.period.as_ref()) {
        if let Err(why) = parse_period(&period.value()) {
            cx.error_spanned_by(period, format!("invalid `for` {:?}: {why}", period.value()));
        }
    }
    if let Some(per) = args.rate.get().and_then(|u| u.period.as_ref()) {
        if let Err(why) = parse_millis(&per.value()).map_err(|_| ()).and_then(|ms| if ms == 0 { Err(()) } else { Ok(ms) }).map_err(|()| "expected numbers with units `ms`, `s`, `m` or `h`, e.g. `\"1s\"`, `\"1m\"`, `\"1h\"`, longer than zero") {
            cx.error_spanned_by(per, format!("invalid `per` {:?}: {why}", per.value()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_type_grammar() {
        for ok in ["email.send", "a", "report-gen.v2", "x_y.z-1.0"] {
            assert_eq!(check_job_type(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "Email.send",
            "email..send",
            ".email",
            "email.",
            "email send",
            "é",
        ] {
            assert!(check_job_type(bad).is_err(), "{bad}");
        }
        assert!(check_job_type(&"a".repeat(256)).is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(30_000));
        assert_eq!(parse_duration("500ms"), Ok(500));
        assert_eq!(parse_duration("2m"), Ok(120_000));
        assert_eq!(parse_duration("1h30m"), Ok(5_400_000));
        for bad in [
            "soon",
            "",
            "30",
            "s",
            "0s",
            "1d",
            "-1s",
            "99999999999999999999s",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
