//! The built-in subjects, each a miniature of a real system with a real bug as a named defect.
//!
//! | module | models | defects |
//! | --- | --- | --- |
//! | `counter` | a tiny object cache, the teaching subject | `leak-on-evict` |
//! | `interpreter` | Miri: fn-pointer ids, program memory, emulated fds with blocking | `fn-ptr-fresh-alloc`, `blocked-read-weak-ref` (and `host-fn-fresh-alloc`) |
//! | `wasi_runtime` | WAMR's WASI context: fd table, prestats, their rwlocks (WAMR #4192) | `prestats-lock-leak`, `fd-table-lock-leak`, `preopen-handle-leak` |
//! | `dlmalloc` | the real `dlmalloc` crate (0.2.14) on host-backed simulated pages | none (fault injection op `release-behind-back`) |
//!
//! `Registry::builtin` (in `registry.rs`) lists them for the CLI.

pub mod counter;
pub mod dlmalloc;
pub mod interpreter;
pub mod wasi_runtime;
