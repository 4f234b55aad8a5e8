//! The built-in subjects, each a miniature of a real system with a real bug as a named defect.
//!
//! | module | models | defects |
//! | --- | --- | --- |
//! | `counter` | a tiny object cache, the teaching subject | `leak-on-evict` |
//! | `allocator` | mimalloc 2.1: segments, pages, thread heaps, abandon, exit-time collect (#904) | `collect-after-segment-free` |
//! | `reloadable_lib` | snmalloc in a loadable library: pagemap reservation per load (#766) | `pagemap-never-released` |
//!
//! `Registry::builtin` (in `registry.rs`) lists them for the CLI.

pub mod allocator;
pub mod counter;
pub mod reloadable_lib;
