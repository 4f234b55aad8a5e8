//! The built-in subjects, each a miniature of a real system with a real bug as a named defect.
//!
//! | module | models | defects |
//! | --- | --- | --- |
//! | `counter` | a tiny object cache, the teaching subject | `leak-on-evict` |
//!
//! `Registry::builtin` (in `registry.rs`) lists them for the CLI.

pub mod counter;
