//! The `on_failure = path` adapter of `#[job_handler]`: any
//! `async fn(&Job, &JobError, extractors..)` becomes a handler's `on_failure`.

use std::fmt::Display;
use std::future::Future;

use crate::{BoxError, BoxFuture, FromJobContext, Job, JobContext, JobError, ServiceRequirement};

/// A function usable as `#[job_handler(.., on_failure = f)]`:
/// `async fn f(job: &Job, error: &JobError, <extractors>..)` returning `()` or
/// `Result<(), E>` with `E: Display`.
///
/// The lifetime is the trait's, not a higher-ranked bound, so the future may
/// borrow the job and the error (as an `async fn` taking references does).
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be used as `on_failure`",
    label = "not an `on_failure` function",
    note = "an `on_failure` function is `async fn(job: &Job, error: &JobError, ..)` where the arguments after the first two are extractors (`Data<T>`, `JobContext`, `Job`), returning `()` or `Result<(), E>` with `E: Display`"
)]
pub trait OnFailureFn<'a, Args>: Send + Sync + 'static {
    /// The services its extractors need.
    fn requirements(&self) -> Vec<ServiceRequirement>;

    /// Runs it for one failed attempt.
    fn call(
        &self,
        job: &'a Job,
        error: &'a JobError,
        ctx: &'a JobContext,
    ) -> BoxFuture<'a, Result<(), BoxError>>;

    /// What `#[job_handler]` calls, in one place so a function with the
    /// wrong signature is one error: with `Some(attempt)` it runs for that
    /// failed attempt, with `None` it reports the services it needs.
    #[doc(hidden)]
    fn entry(
        &self,
        attempt: Option<(&'a Job, &'a JobError, &'a JobContext)>,
    ) -> OnFailureEntry<'a> {
        match attempt {
            Some((job, error, ctx)) => OnFailureEntry::Run(self.call(job, error, ctx)),
            None => OnFailureEntry::Needs(self.requirements()),
        }
    }
}

/// What [`OnFailureFn::entry`] gives back.
#[doc(hidden)]
pub enum OnFailureEntry<'a> {
    /// The `on_failure` call for a failed attempt.
    Run(BoxFuture<'a, Result<(), BoxError>>),
    /// The services it needs.
    Needs(Vec<ServiceRequirement>),
}

impl OnFailureEntry<'_> {
    /// Runs it (nothing to run for `Needs`).
    pub async fn run(self) -> Result<(), BoxError> {
        match self {
            OnFailureEntry::Run(fut) => fut.await,
            OnFailureEntry::Needs(_) => Ok(()),
        }
    }

    /// The services it needs (none for `Run`).
    pub fn needs(self) -> Vec<ServiceRequirement> {
        match self {
            OnFailureEntry::Run(_) => Vec::new(),
            OnFailureEntry::Needs(needs) => needs,
        }
    }
}

impl std::fmt::Debug for OnFailureEntry<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OnFailureEntry")
    }
}

/// What an `on_failure` function may return.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a supported `on_failure` return type",
    note = "an `on_failure` function returns `()` or `Result<(), E>` with `E: Display`"
)]
pub trait IntoFailureResult {
    /// The `on_failure` function's verdict.
    fn into_failure_result(self) -> Result<(), BoxError>;
}

impl IntoFailureResult for () {
    fn into_failure_result(self) -> Result<(), BoxError> {
        Ok(())
    }
}

impl<E: Display> IntoFailureResult for Result<(), E> {
    fn into_failure_result(self) -> Result<(), BoxError> {
        self.map_err(|e| e.to_string().into())
    }
}

macro_rules! on_failure_fn {
    ($($arg:ident),*) => {
        impl<'a, F, Fut, $($arg,)*> OnFailureFn<'a, ($($arg,)*)> for F
        where
            F: Fn(&'a Job, &'a JobError, $($arg,)*) -> Fut + Send + Sync + 'static,
            Fut: Future + Send + 'a,
            Fut::Output: IntoFailureResult,
            $($arg: FromJobContext + Send + 'a,)*
        {
            fn requirements(&self) -> Vec<ServiceRequirement> {
                #[allow(unused_mut)]
                let mut needs = Vec::new();
                $(needs.extend($arg::requirement());)*
                needs
            }

            #[allow(non_snake_case, unused_variables)]
            fn call(
                &self,
                job: &'a Job,
                error: &'a JobError,
                ctx: &'a JobContext,
            ) -> BoxFuture<'a, Result<(), BoxError>> {
                $(
                    let $arg = match $arg::from_context(ctx) {
                        Ok(value) => value,
                        Err(e) => {
                            let e = e.to_string();
                            return Box::pin(async move { Err(e.into()) });
                        }
                    };
                )*
                let fut = (self)(job, error, $($arg,)*);
                Box::pin(async move { fut.await.into_failure_result() })
            }
        }
    };
}

on_failure_fn!();
on_failure_fn!(A1);
on_failure_fn!(A1, A2);
on_failure_fn!(A1, A2, A3);
on_failure_fn!(A1, A2, A3, A4);
on_failure_fn!(A1, A2, A3, A4, A5);
on_failure_fn!(A1, A2, A3, A4, A5, A6);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Data, Services};
    use std::sync::atomic::{AtomicU32, Ordering};

    struct Alerts(AtomicU32);

    async fn plain(_job: &Job, _error: &JobError) {}

    async fn with_service(job: &Job, error: &JobError, alerts: Data<Alerts>) -> Result<(), String> {
        alerts.0.fetch_add(1, Ordering::SeqCst);
        if error.is_permanent() {
            return Err(format!("job {} failed for good", job.id));
        }
        Ok(())
    }

    async fn run<'a, Args, F: OnFailureFn<'a, Args>>(
        f: &F,
        job: &'a Job,
        error: &'a JobError,
        ctx: &'a JobContext,
    ) -> Result<(), BoxError> {
        f.call(job, error, ctx).await
    }

    fn job() -> Job {
        serde_json::from_value(serde_json::json!({
            "id": "01900000-0000-7000-8000-000000000000", "queue_name": "default",
            "job_type": "t", "payload": null, "status": "FAILED", "priority": 0,
            "retry_count": 0, "max_retries": 0, "run_at": "2026-01-01T00:00:00Z",
            "created_at": "2026-01-01T00:00:00Z", "started_at": null, "completed_at": null,
            "error_message": null, "result_data": null, "locked_by": null,
            "lease_until": null, "attempt": 1
        }))
        .unwrap()
    }

    #[tokio::test]
    async fn adapts_functions_of_any_arity() {
        let mut services = Services::new();
        services.insert(Alerts(AtomicU32::new(0)));
        let job = job();
        let ctx = JobContext::for_job(job.clone(), services.clone());
        let err = JobError::permanent("bad");
        run(&plain, &job, &err, &ctx).await.unwrap();
        let out = run(&with_service, &job, &err, &ctx).await;
        assert!(out.unwrap_err().to_string().contains("failed for good"));
        assert_eq!(
            services.get::<Alerts>().unwrap().0.load(Ordering::SeqCst),
            1
        );
        assert_eq!(OnFailureFn::requirements(&with_service).len(), 1);
        let bare = JobContext::for_job(job.clone(), Services::new());
        let missing = run(&with_service, &job, &err, &bare).await.unwrap_err();
        assert!(missing.to_string().contains("Alerts"), "{missing}");
    }
}
