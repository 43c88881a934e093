//! `#[job_handler]`: typed async-fn job handlers for the `jobs` framework.
