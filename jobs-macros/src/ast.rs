//! The handler function as the expansion sees it: the payload, the injected
//! arguments and the return type, read from a `syn::ItemFn`.

use syn::{FnArg, Ident, ItemFn, ReturnType, Type};

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
