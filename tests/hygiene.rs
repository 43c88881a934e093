//! The expansion means the same whatever the user's crate shadows or denies:
//! every name it uses is a `::core` or `::jobs::__private` path.
#![deny(warnings, missing_docs, missing_debug_implementations)]

use ::serde::{Deserialize, Serialize};

/// A payload (derived outside the shadowing module: serde's own derive does
/// not survive a shadowed `str`).
#[derive(Debug, Serialize, Deserialize)]
pub struct Hygienic {
    /// A field.
    pub n: u32,
}

/// Handlers written where every common name means something else.
pub mod shadowed {
    #![allow(dead_code, unused_macros, non_camel_case_types, non_upper_case_globals)]

    use super::Hygienic;
    use jobs::{job_handler, Data, JobContext, JobError};

    type Result<T> = ::core::result::Result<T, Dummy>;
    type Option = ();
    type Box = ();
    type String = ();
    type Vec = ();
    type Arc = ();
    type Duration = ();
    type str = ();
    type u32 = ();
    struct Dummy;
    macro_rules! format {
        ($($t:tt)*) => {
            compile_error!("the expansion must not use the user's `format!`")
        };
    }
    macro_rules! concat {
        ($($t:tt)*) => {
            compile_error!("the expansion must not use the user's `concat!`")
        };
    }
    macro_rules! line {
        () => {
            compile_error!("the expansion must not use the user's `line!`")
        };
    }
    const Ok: () = ();
    const Err: () = ();
    const Some: () = ();
    const None: () = ();
    mod serde {}
    mod serde_json {}
    mod inventory {}
    mod jobs_core {}
    /// Not the facade's trait: the expansion must not pick it up.
    pub trait JobHandler {}
    /// Not the facade's trait.
    pub trait JobPayload {}
    /// Not the facade's trait.
    pub trait FromJobContext {}
    /// Not the facade's type.
    #[derive(Debug)]
    pub struct JobResult;

    /// A service.
    #[derive(Debug)]
    pub struct Service;

    /// Called on failure.
    pub async fn failed(_job: &jobs::Job, _error: &JobError, _svc: Data<Service>) {}

    /// A documented public handler in a crate that denies warnings.
    #[job_handler(
        "hygiene.check",
        queue = "q",
        max_retries = 1,
        priority = -2,
        timeout = "1s",
        backoff = jobs::Backoff::none(),
        on_failure = failed
    )]
    pub async fn hygienic(
        payload: Hygienic,
        _svc: Data<Service>,
        _ctx: JobContext,
        _job: &jobs::Job,
    ) -> ::core::result::Result<::core::primitive::u32, JobError> {
        ::core::result::Result::Ok(payload.n)
    }
}

#[test]
fn compiles_and_runs_under_shadowing() {
    use shadowed::HygienicHandler;
    let h = HygienicHandler;
    assert_eq!(
        <HygienicHandler as jobs::JobHandler>::job_type(&h),
        "hygiene.check"
    );
    assert_eq!(<Hygienic as jobs::JobPayload>::JOB_TYPE, "hygiene.check");
    assert_eq!((HygienicHandler::REGISTRATION.requirements)().len(), 2);
    assert_eq!(<Hygienic as jobs::JobPayload>::options().priority, Some(-2));
}
