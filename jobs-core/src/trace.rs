//! Trace context carried from the code that enqueues a job to the attempt
//! that runs it, as W3C Trace Context in the job's metadata: `traceparent`
//! (`00-<trace id>-<span id>-<flags>`) and, when there is one, `tracestate`.
//!
//! With the `otel` feature and a `tracing-opentelemetry` layer installed, an
//! enqueue inside a traced span (a web request, say) stores that span's
//! context with the job, and the manager makes the attempt's `job` span its
//! child — in whatever process runs it — so one trace shows "request →
//! enqueue → job ran". A `traceparent` the producer set itself is kept.
//! Without the feature the keys are plain metadata, and nothing is added.

/// The metadata key of the W3C `traceparent`.
pub const TRACEPARENT: &str = "traceparent";
/// The metadata key of the W3C `tracestate`.
pub const TRACESTATE: &str = "tracestate";

#[cfg(feature = "otel")]
mod otel {
    use std::str::FromStr;

    use opentelemetry::trace::{
        SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState,
    };
    use opentelemetry::Context;
    use serde_json::{Map, Value};
    use tracing_opentelemetry::OpenTelemetrySpanExt;

    use super::{TRACEPARENT, TRACESTATE};

    /// Stores the current span's trace context in `metadata`, unless it has
    /// one already or there is no sampled-or-not valid span.
    pub(crate) fn inject(metadata: &mut Map<String, Value>) {
        if metadata.contains_key(TRACEPARENT) {
            return;
        }
        let cx = tracing::Span::current().context();
        let span = cx.span();
        let sc = span.span_context();
        if !sc.is_valid() {
            return;
        }
        metadata.insert(
            TRACEPARENT.to_owned(),
            Value::String(format!(
                "00-{}-{}-{:02x}",
                sc.trace_id(),
                sc.span_id(),
                sc.trace_flags().to_u8()
            )),
        );
        let state = sc.trace_state().header();
        if !state.is_empty() {
            metadata.insert(TRACESTATE.to_owned(), Value::String(state));
        }
    }

    /// The remote parent that `metadata` carries, if its `traceparent` is
    /// well formed (version 00; anything else is ignored, as the W3C
    /// specification asks of a receiver that cannot parse it).
    pub fn parent_context(metadata: &Map<String, Value>) -> Option<Context> {
        let header = metadata.get(TRACEPARENT)?.as_str()?;
        let mut parts = header.split('-');
        let (version, trace, span, flags) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if version != "00" || parts.next().is_some() || trace.len() != 32 || span.len() != 16 {
            return None;
        }
        let trace_id = TraceId::from_hex(trace).ok()?;
        let span_id = SpanId::from_hex(span).ok()?;
        let flags = u8::from_str_radix(flags, 16).ok()?;
        let state = metadata
            .get(TRACESTATE)
            .and_then(Value::as_str)
            .and_then(|s| TraceState::from_str(s).ok())
            .unwrap_or_default();
        let sc = SpanContext::new(trace_id, span_id, TraceFlags::new(flags), true, state);
        sc.is_valid()
            .then(|| Context::new().with_remote_span_context(sc))
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn a_traceparent_round_trips_and_bad_ones_are_ignored() {
            let mut m = Map::new();
            m.insert(
                TRACEPARENT.into(),
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into(),
            );
            m.insert(TRACESTATE.into(), "vendor=abc".into());
            let cx = parent_context(&m).expect("well formed");
            let span = cx.span();
            let sc = span.span_context();
            assert_eq!(
                sc.trace_id().to_string(),
                "4bf92f3577b34da6a3ce929d0e0e4736"
            );
            assert_eq!(sc.span_id().to_string(), "00f067aa0ba902b7");
            assert!(sc.is_sampled() && sc.is_remote());
            assert_eq!(sc.trace_state().get("vendor"), Some("abc"));
            for bad in [
                "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
                "00-xyz-00f067aa0ba902b7-01",
                "",
            ] {
                m.insert(TRACEPARENT.into(), bad.into());
                assert!(parent_context(&m).is_none(), "{bad}");
            }
        }
    }
}

#[cfg(feature = "otel")]
pub(crate) use otel::inject;
#[cfg(feature = "otel")]
pub use otel::parent_context;
