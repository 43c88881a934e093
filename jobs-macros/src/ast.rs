//! The handler function as the expansion sees it: the payload, the injected
//! arguments and the return type, read from a `syn::ItemFn`.

use syn::{FnArg, GenericArgument, Ident, ItemFn, Lifetime, PathArguments, ReturnType, Type};

/// A `#[job_handler]` function: `async fn name(payload: P, extractors..) -> R`.
pub struct Handler<'a> {
    pub item: &'a ItemFn,
    /// The first argument's type, when there is a typed first argument.
    pub payload: Option<&'a Type>,
    /// The arguments after the payload.
    pub extractors: Vec<Extractor<'a>>,
    /// `None` for `-> ()` written as nothing.
    pub output: Option<&'a Type>,
}

/// An argument resolved from the job's context.
pub enum Extractor<'a> {
    /// `x: T` → `<T as FromJobContext>`.
    Owned(&'a Type),
    /// `x: &T` → `<T as FromJobContextRef>`.
    Borrowed(&'a Type),
}

impl<'a> Handler<'a> {
    pub fn from_syn(item: &'a ItemFn) -> Self {
        let mut typed = item.sig.inputs.iter().filter_map(|arg| match arg {
            FnArg::Typed(pat) => Some(&*pat.ty),
            FnArg::Receiver(_) => None,
        });
        let payload = typed.next();
        let extractors = typed
            .map(|ty| match ty {
                Type::Reference(r) if r.mutability.is_none() => Extractor::Borrowed(&r.elem),
                ty => Extractor::Owned(ty),
            })
            .collect();
        let output = match &item.sig.output {
            ReturnType::Default => None,
            ReturnType::Type(_, ty) => Some(&**ty),
        };
        Handler {
            item,
            payload,
            extractors,
            output,
        }
    }

    pub fn fn_name(&self) -> &Ident {
        &self.item.sig.ident
    }
}

/// The last segment of a path type and its type arguments: `std::sync::Arc<T>`
/// → (`Arc`, [`T`]). `None` for anything but a plain path type.
pub fn last_segment(ty: &Type) -> Option<(&Ident, Vec<&Type>)> {
    let Type::Path(tp) = ty else { return None };
    if tp.qself.is_some() {
        return None;
    }
    let seg = tp.path.segments.last()?;
    let args = match &seg.arguments {
        PathArguments::AngleBracketed(a) => a
            .args
            .iter()
            .filter_map(|a| match a {
                GenericArgument::Type(t) => Some(t),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    Some((&seg.ident, args))
}

/// `Result<T, E>` written out (any path ending in `Result` with two type
/// arguments): its `T` and `E`, so the expansion can check each at its own
/// tokens. An alias such as `anyhow::Result<T>` is `None`.
pub fn result_parts(ty: &Type) -> Option<(&Type, &Type)> {
    match last_segment(ty)? {
        (ident, args) if ident == "Result" && args.len() == 2 => Some((args[0], args[1])),
        _ => None,
    }
}

/// Whether `ty` can name a handler's result type outside its function:
/// an owned type written out (paths, tuples, arrays, with `'static`
/// lifetimes only). A reference, a borrowing lifetime, `impl Trait`, `_` or a
/// macro cannot (and a borrowed result could not be decoded anyway).
pub fn is_owned_type(ty: &Type) -> bool {
    match ty {
        Type::Path(tp) => {
            tp.qself.as_ref().is_none_or(|q| is_owned_type(&q.ty))
                && tp.path.segments.iter().all(|seg| match &seg.arguments {
                    PathArguments::None => true,
                    PathArguments::AngleBracketed(a) => a.args.iter().all(|arg| match arg {
                        GenericArgument::Type(t) => is_owned_type(t),
                        GenericArgument::Lifetime(l) => l.ident == "static",
                        GenericArgument::Const(_) => true,
                        _ => false,
                    }),
                    PathArguments::Parenthesized(_) => false,
                })
        }
        Type::Tuple(t) => t.elems.iter().all(is_owned_type),
        Type::Array(a) => is_owned_type(&a.elem),
        Type::Paren(p) => is_owned_type(&p.elem),
        Type::Group(g) => is_owned_type(&g.elem),
        _ => false,
    }
}

/// The first lifetime in a type other than `'static`: a payload holding one
/// borrows, which a payload deserialized for every attempt cannot.
pub fn first_borrow(ty: &Type) -> Option<&Lifetime> {
    let non_static = |l: &'_ Lifetime| l.ident != "static";
    match ty {
        Type::Reference(r) => r
            .lifetime
            .as_ref()
            .filter(|l| non_static(l))
            .or_else(|| first_borrow(&r.elem)),
        Type::Path(tp) => tp
            .path
            .segments
            .iter()
            .find_map(|seg| match &seg.arguments {
                PathArguments::AngleBracketed(a) => a.args.iter().find_map(|arg| match arg {
                    GenericArgument::Lifetime(l) if non_static(l) => Some(l),
                    GenericArgument::Type(t) => first_borrow(t),
                    _ => None,
                }),
                _ => None,
            }),
        Type::Tuple(t) => t.elems.iter().find_map(first_borrow),
        Type::Array(a) => first_borrow(&a.elem),
        Type::Slice(s) => first_borrow(&s.elem),
        Type::Paren(p) => first_borrow(&p.elem),
        Type::Group(g) => first_borrow(&g.elem),
        _ => None,
    }
}

/// What kind of built-in extractor a type names, by its last path segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Named {
    /// A type only `jobs` defines: `JobContext`, `Data<T>`, `CancellationToken`,
    /// `Services`, `Option<Data<T>>`, `Arc<Job>`.
    Extractor,
    /// `Job` or `Queue`: extractors, but common enough names that a payload
    /// type of the user's may be called so.
    Ambiguous,
}

/// Whether `ty` names a built-in extractor (by value or by reference).
pub fn extractor_name(ty: &Type) -> Option<Named> {
    let ty = match ty {
        Type::Reference(r) => &*r.elem,
        ty => ty,
    };
    let (ident, args) = last_segment(ty)?;
    match ident.to_string().as_str() {
        "JobContext" | "Data" | "CancellationToken" | "Services" => Some(Named::Extractor),
        "Job" | "Queue" => Some(Named::Ambiguous),
        "Option"
            if args
                .first()
                .and_then(|t| last_segment(t))
                .is_some_and(|(i, _)| i == "Data") =>
        {
            Some(Named::Extractor)
        }
        "Arc"
            if args
                .first()
                .and_then(|t| last_segment(t))
                .is_some_and(|(i, _)| i == "Job") =>
        {
            Some(Named::Extractor)
        }
        _ => None,
    }
}

/// A type's tokens as a person writes them (`Data<Mailer>`, not `Data < Mailer >`).
pub fn type_text(ty: &Type) -> String {
    let text = quote::quote!(#ty).to_string();
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != ' ' {
            out.push(c);
            continue;
        }
        let prev = out.chars().last();
        let next = chars.peek().copied();
        let glued_to_prev = matches!(prev, Some('<' | '(' | '[' | '&' | ':'));
        let glued_to_next = matches!(next, Some('<' | '>' | ',' | ')' | ']' | ':'));
        if !glued_to_prev && !glued_to_next {
            out.push(' ');
        }
    }
    out
}

/// The handler type's name for a function: `send_email` → `SendEmailHandler`;
/// a name that already ends in `_handler` is not doubled (`email_handler` →
/// `EmailHandler`).
pub fn handler_type_name(fn_name: &Ident) -> Ident {
    let name = fn_name.to_string();
    let name = name.trim_start_matches("r#");
    let stem = name
        .strip_suffix("_handler")
        .filter(|s| !s.is_empty())
        .unwrap_or(name);
    let mut camel = String::with_capacity(stem.len() + 7);
    for part in stem.split('_').filter(|p| !p.is_empty()) {
        let mut chars = part.chars();
        if let Some(first) = chars.next() {
            camel.extend(first.to_uppercase());
            camel.push_str(chars.as_str());
        }
    }
    if camel.is_empty() {
        camel.push_str("Job");
    }
    camel.push_str("Handler");
    Ident::new(&camel, fn_name.span())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> String {
        handler_type_name(&Ident::new(s, proc_macro2::Span::call_site())).to_string()
    }

    fn ty(s: &str) -> Type {
        syn::parse_str(s).unwrap()
    }

    #[test]
    fn types_are_read_by_shape() {
        assert!(result_parts(&ty("Result<Receipt, MailError>")).is_some());
        assert!(result_parts(&ty("std::result::Result<(), String>")).is_some());
        assert!(result_parts(&ty("anyhow::Result<Receipt>")).is_none());
    }

    #[test]
    fn owned_result_types() {
        for owned in [
            "Receipt",
            "Vec<(u32, String)>",
            "Cow<'static, str>",
            "[u8; 4]",
            "()",
        ] {
            assert!(is_owned_type(&ty(owned)), "{owned}");
        }
        for borrowed in [
            "&str",
            "Cow<'a, str>",
            "impl Serialize",
            "_",
            "Vec<&'static str>",
        ] {
            assert!(!is_owned_type(&ty(borrowed)), "{borrowed}");
        }
        assert_eq!(
            first_borrow(&ty("Greet<'a>")).map(|l| l.to_string()),
            Some("'a".into())
        );
        assert!(first_borrow(&ty("Vec<Cow<'static, str>>")).is_none());
        assert!(first_borrow(&ty("(u8, Greet<'_>)")).is_some());
        assert_eq!(extractor_name(&ty("JobContext")), Some(Named::Extractor));
        assert_eq!(extractor_name(&ty("&Job")), Some(Named::Ambiguous));
        assert_eq!(
            extractor_name(&ty("Option<Data<M>>")),
            Some(Named::Extractor)
        );
        assert_eq!(extractor_name(&ty("Option<M>")), None);
        assert_eq!(extractor_name(&ty("SendEmail")), None);
        assert_eq!(type_text(&ty("Data < Mailer >")), "Data<Mailer>");
        assert_eq!(
            type_text(&ty("Option<Data<dyn Mail + Send>>")),
            "Option<Data<dyn Mail + Send>>"
        );
        assert_eq!(
            type_text(&ty("std::sync::Arc<Mailer>")),
            "std::sync::Arc<Mailer>"
        );
        assert_eq!(type_text(&ty("&'a str")), "&'a str");
        assert_eq!(type_text(&ty("(u8, String)")), "(u8, String)");
    }

    #[test]
    fn handler_names_follow_the_convention() {
        assert_eq!(name("send_email"), "SendEmailHandler");
        assert_eq!(name("email_handler"), "EmailHandler");
        assert_eq!(name("import"), "ImportHandler");
        assert_eq!(name("_private_job"), "PrivateJobHandler");
        assert_eq!(name("handler"), "HandlerHandler");
        assert_eq!(name("sendV2"), "SendV2Handler");
    }
}
