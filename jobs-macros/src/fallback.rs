//! What is emitted when the attribute or the function is wrong: the user's
//! function unchanged, the handler struct and a stub `JobHandler` impl, so the
//! one mistake is the only error — code that calls the function, names the
//! handler or enqueues the payload keeps compiling (tokio-macros `entry.rs`,
//! thiserror `impl/src/fallback.rs`).

use proc_macro2::TokenStream;
use quote::quote;
use syn::{ItemFn, Type};

use crate::args::Args;
use crate::ast::Handler;
use crate::expand::{handler_struct, names, payload_impl};

/// `payload_ok`: the payload type passed validation, so implementing
/// `JobPayload` for it adds no error of its own.
pub fn expand(args: &Args, item: &ItemFn, errors: TokenStream, payload_ok: bool) -> TokenStream {
    let handler = Handler::from_syn(item);
    // A method (`self`) is inside an `impl`: only the function may be emitted there.
    let is_method = item
        .sig
        .inputs
        .iter()
        .any(|a| matches!(a, syn::FnArg::Receiver(_)));
    if is_method {
        return quote! { #errors #item };
    }
    let (name, krate) = names(args, &handler);
    let p = quote!(#krate::__private);
    let job_type = args
        .job_type
        .as_ref()
        .map(|l| l.value())
        .unwrap_or_default();
    let (strukt, ty) = handler_struct(&name, &job_type, &handler, &krate);
    // The payload impl only when the payload itself is usable, so its own
    // errors (not `Deserialize`, ..) are reported once the rest is fixed.
    let payload = match (handler.payload, &args.job_type) {
        (Some(payload), Some(lit))
            if payload_ok && is_plain(payload) && handler.item.sig.generics.params.is_empty() =>
        {
            payload_impl(args, &krate, payload, lit, &ty, &handler)
        }
        _ => TokenStream::new(),
    };
    quote! {
        #errors
        #item
        #strukt
        const _: () = {
            #[automatically_derived]
            impl #ty {
                /// The job type this handler processes.
                pub const JOB_TYPE: &'static ::core::primitive::str = #job_type;

                /// A stub: the attribute has errors.
                pub const REGISTRATION: #p::HandlerRegistration = #p::HandlerRegistration::new(
                    #job_type,
                    "",
                    "",
                    ::core::file!(),
                    ::core::line!(),
                    |_| ::core::result::Result::Ok(()),
                    #p::Vec::new,
                    || ::core::unreachable!(),
                );
            }

            #[automatically_derived]
            impl #p::JobHandler for #ty {
                fn job_type(&self) -> &::core::primitive::str {
                    #job_type
                }

                async fn handle(
                    &self,
                    _: &#p::Job,
                ) -> ::core::result::Result<#p::JobResult, #p::JobError> {
                    ::core::unreachable!()
                }
            }

            #payload
        };
    }
}

fn is_plain(ty: &Type) -> bool {
    !matches!(ty, Type::Reference(_) | Type::ImplTrait(_) | Type::Infer(_))
}
