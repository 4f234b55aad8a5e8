//! The built-in subjects, each a miniature of a real system with a real bug as a named defect.
//!
//! | module | models | defects |
//! | --- | --- | --- |
//! | `counter` | a tiny object cache, the teaching subject | `leak-on-evict` |
//! | `wasi_runtime` | WAMR's WASI context: fd table, prestats, their rwlocks (WAMR #4192) | `prestats-lock-leak`, `fd-table-lock-leak`, `preopen-handle-leak` |
//!
//! `Registry::builtin` (in `registry.rs`) lists them for the CLI.

pub mod counter;
pub mod wasi_runtime;
