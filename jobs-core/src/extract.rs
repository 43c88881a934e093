//! Injected handler arguments: `Data<T>`, `JobContext`, `Job`, and the trait behind them.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use crate::{CancellationToken, Job, JobContext, JobError, Queue};

/// Shared services given to the `WorkerManager` builder (`.data(..)`), looked up
/// by type. Cheap to clone.
#[derive(Clone, Default)]
pub struct Services {
    map: Arc<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>,
}

impl Services {
    /// No services.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a service; a second one of the same type replaces the first.
    pub fn insert<T: Send + Sync + 'static>(&mut self, value: T) {
        self.insert_arc(Arc::new(value));
    }

    /// Adds a shared service (also for trait objects: `Arc<dyn Mailer>`).
    pub fn insert_arc<T: ?Sized + Send + Sync + 'static>(&mut self, value: Arc<T>) {
        Arc::make_mut(&mut self.map).insert(TypeId::of::<T>(), Arc::new(value));
    }

    /// The service of type `T`, if one was added.
    pub fn get<T: ?Sized + Send + Sync + 'static>(&self) -> Option<Arc<T>> {
        self.map
            .get(&TypeId::of::<T>())
            .and_then(|v| v.downcast_ref::<Arc<T>>())
            .cloned()
    }

    /// Whether a service of this type was added.
    pub fn contains(&self, type_id: TypeId) -> bool {
        self.map.contains_key(&type_id)
    }

    /// How many services there are.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

impl fmt::Debug for Services {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Services")
            .field("len", &self.map.len())
            .finish()
    }
}

/// A service an extractor needs, checked when the manager is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServiceRequirement {
    /// The service's type.
    pub type_id: TypeId,
    /// Its name, for messages.
    pub type_name: &'static str,
}

impl ServiceRequirement {
    /// A requirement of a service of type `T`.
    pub fn of<T: ?Sized + 'static>() -> Self {
        ServiceRequirement {
            type_id: TypeId::of::<T>(),
            type_name: std::any::type_name::<T>(),
        }
    }
}

/// A handler argument resolved from the running job's context, like axum's
/// `FromRequestParts`. Implement it to inject your own types.
///
/// The extractors: [`Data<T>`] (a service given to the builder with
/// `.data(..)`), `Option<Data<T>>` (a service that may be missing),
/// [`Queue`] (the queue handle the job came from, to enqueue more jobs),
/// [`JobContext`], [`Job`], `Arc<Job>` and [`CancellationToken`].
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be injected into a job handler",
    label = "not an extractor",
    note = "only the first argument of a job handler is the payload; the others are extractors: `Data<T>` for a service given to the builder with `.data(..)` (`Option<Data<T>>` if it may be missing), `Queue`, `JobContext`, `Job`, `CancellationToken`, or a type implementing `FromJobContext`"
)]
pub trait FromJobContext: Sized {
    /// The service this extractor needs, so `build()` can refuse a manager that lacks it.
    fn requirement() -> Option<ServiceRequirement> {
        None
    }

    /// Extracts the value for one attempt.
    fn from_context(ctx: &JobContext) -> Result<Self, JobError>;
}

/// A shared service injected into handlers: `.data(Mailer::new())` on the builder,
/// `mailer: Data<Mailer>` in the handler.
pub struct Data<T: ?Sized>(Arc<T>);

impl<T> Data<T> {
    /// Wraps a value (for calling a handler in a test).
    pub fn new(value: T) -> Self {
        Data(Arc::new(value))
    }
}

impl<T: ?Sized> Data<T> {
    /// Wraps a shared value.
    pub fn from_arc(value: Arc<T>) -> Self {
        Data(value)
    }

    /// The shared value inside.
    pub fn into_inner(self) -> Arc<T> {
        self.0
    }
}

impl<T: ?Sized> Deref for Data<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: ?Sized> Clone for Data<T> {
    fn clone(&self) -> Self {
        Data(self.0.clone())
    }
}

impl<T: ?Sized> From<Arc<T>> for Data<T> {
    fn from(value: Arc<T>) -> Self {
        Data(value)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for Data<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Data").field(&&*self.0).finish()
    }
}

impl<T: ?Sized + Send + Sync + 'static> FromJobContext for Data<T> {
    fn requirement() -> Option<ServiceRequirement> {
        Some(ServiceRequirement::of::<T>())
    }

    fn from_context(ctx: &JobContext) -> Result<Self, JobError> {
        ctx.services()
            .get::<T>()
            .map(Data)
            .ok_or_else(|| JobError::msg(missing_service(std::any::type_name::<T>())))
    }
}

/// What to say about a `Data<T>` no service was given for: `.data(..)`, or
/// `.data_arc(..)` for a trait object (which `.data(..)` cannot take).
fn missing_service(type_name: &str) -> String {
    if let Some(name) = type_name.strip_prefix("dyn ") {
        format!(
            "no `Data<dyn {name}>` was given to this worker; add `.data_arc(Arc::new(service) as Arc<dyn {name}>)` to the WorkerManager builder"
        )
    } else {
        format!(
            "no `Data<{type_name}>` was given to this worker; add `.data({type_name} {{ .. }})` (or `.data_arc(..)` for an `Arc` you hold) to the WorkerManager builder"
        )
    }
}

/// A service that may be missing: `None` when the manager was given none,
/// and no requirement for `build()` to check.
impl<T: ?Sized + Send + Sync + 'static> FromJobContext for Option<Data<T>> {
    fn from_context(ctx: &JobContext) -> Result<Self, JobError> {
        Ok(ctx.services().get::<T>().map(Data))
    }
}

/// The queue handle the job came from, to enqueue more jobs from a handler
/// (the "job creator"): no `.data(..)` needed.
impl FromJobContext for Queue {
    fn from_context(ctx: &JobContext) -> Result<Self, JobError> {
        ctx.queue().cloned().ok_or_else(no_queue)
    }
}

fn no_queue() -> JobError {
    JobError::msg(
        "this job has no queue handle: it is not run by a WorkerManager; in a test, run it with \
         `jobs::testing::perform` (which gives it one), or build the context with \
         `JobContext::for_job(..).with_queue(queue)`",
    )
}

impl FromJobContext for JobContext {
    fn from_context(ctx: &JobContext) -> Result<Self, JobError> {
        Ok(ctx.clone())
    }
}

impl FromJobContext for Job {
    fn from_context(ctx: &JobContext) -> Result<Self, JobError> {
        Ok(ctx.job().clone())
    }
}

impl FromJobContext for Arc<Job> {
    fn from_context(ctx: &JobContext) -> Result<Self, JobError> {
        Ok(ctx.job_arc().clone())
    }
}

impl FromJobContext for CancellationToken {
    fn from_context(ctx: &JobContext) -> Result<Self, JobError> {
        Ok(ctx.cancellation().clone())
    }
}

/// A handler argument borrowed from the running job's context: `&Job`,
/// `&JobContext`, `&Services`, `&CancellationToken`, `&Queue`. `#[job_handler]`
/// uses it for arguments of type `&T`.
#[diagnostic::on_unimplemented(
    message = "`&{Self}` cannot be injected into a job handler",
    label = "not a borrowable extractor",
    note = "only `&Job`, `&JobContext`, `&Services`, `&CancellationToken` and `&Queue` can be taken by reference; take other extractors by value (`Data<T>`, `JobContext`, `Job`)"
)]
pub trait FromJobContextRef {
    /// Borrows the value from the context of one attempt.
    fn from_context_ref(ctx: &JobContext) -> Result<&Self, JobError>;
}

impl FromJobContextRef for Job {
    fn from_context_ref(ctx: &JobContext) -> Result<&Self, JobError> {
        Ok(ctx.job())
    }
}

impl FromJobContextRef for JobContext {
    fn from_context_ref(ctx: &JobContext) -> Result<&Self, JobError> {
        Ok(ctx)
    }
}

impl FromJobContextRef for Services {
    fn from_context_ref(ctx: &JobContext) -> Result<&Self, JobError> {
        Ok(ctx.services())
    }
}

impl FromJobContextRef for CancellationToken {
    fn from_context_ref(ctx: &JobContext) -> Result<&Self, JobError> {
        Ok(ctx.cancellation())
    }
}

impl FromJobContextRef for Queue {
    fn from_context_ref(ctx: &JobContext) -> Result<&Self, JobError> {
        ctx.queue().ok_or_else(no_queue)
    }
}
