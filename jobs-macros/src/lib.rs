//! `#[job_handler]`: typed async-fn job handlers for the `jobs` framework.
//!
//! Use it through the facade (`jobs::job_handler`, in `jobs::prelude`); its
//! documentation lives there. The attribute runs in three stages, one file each:
//! `args` parses the attribute, `validate` checks it and the function, and
//! `expand` generates the handler — or, on any error, `fallback` emits the
//! function and a stub so one mistake is one error.

#![warn(missing_docs)]

mod args;
mod ast;
mod ctxt;
mod expand;
mod fallback;
mod validate;

use proc_macro::TokenStream;

/// Turns an `async fn(payload, extractors..)` into a registered job handler.
///
/// The documentation, with examples, is on the re-export `jobs::job_handler`.
#[proc_macro_attribute]
pub fn job_handler(args: TokenStream, item: TokenStream) -> TokenStream {
    job_handler_impl(args.into(), item.into()).into()
}

fn job_handler_impl(
    args: proc_macro2::TokenStream,
    item: proc_macro2::TokenStream,
) -> proc_macro2::TokenStream {
    let cx = ctxt::Ctxt::new();
    let args = args::Args::parse(&cx, args);
    let func: syn::ItemFn = match syn::parse2(item.clone()) {
        Ok(func) => func,
        Err(_) => {
            cx.error_at(
                proc_macro2::Span::call_site(),
                "`#[job_handler]` applies to an `async fn` whose first argument is the payload",
            );
            let errors = cx.check().expect_err("just reported");
            return quote::quote! { #errors #item };
        }
    };
    let handler = ast::Handler::from_syn(&func);
    let payload_ok = validate::validate(&cx, &args, &handler);
    match cx.check() {
        Ok(()) => expand::expand(&args, &handler),
        Err(errors) => fallback::expand(&args, &func, errors, payload_ok),
    }
}
