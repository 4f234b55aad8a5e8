//! The built-in subjects, each a miniature of a real system with a real bug as a named defect.
//!
//! | module | models | defects |
//! | --- | --- | --- |
//! | `interpreter` | Miri: fn-pointer ids, program memory, emulated fds with blocking | `fn-ptr-fresh-alloc`, `blocked-read-weak-ref` (and `host-fn-fresh-alloc`) |
//! | `allocator` | mimalloc 2.1: segments, pages, thread heaps, abandon, exit-time collect (#904) | `collect-after-segment-free` (and `absorbed-pages-never-collected`, found by our fuzzer) |
//! | `wasi_runtime` | WAMR's WASI context: fd table, prestats, their rwlocks (WAMR #4192) | `prestats-lock-leak`, `fd-table-lock-leak`, `preopen-handle-leak` |
//! | `reloadable_lib` | snmalloc in a loadable library: pagemap reservation per load (#766) | `pagemap-never-released` |
//! | `dlmalloc` | the real `dlmalloc` crate (0.2.14) on host-backed simulated pages | none (fault injection op `release-behind-back`) |
//! | `counter` | a tiny object cache, the teaching subject | `leak-on-evict` |
//!
//! `Registry::builtin` (in `registry.rs`) lists them for the CLI.

pub mod allocator;
pub mod counter;
pub mod dlmalloc;
pub mod interpreter;
pub mod reloadable_lib;
pub mod wasi_runtime;

#[cfg(test)]
mod tests {
    use crate::subject::check_description;

    #[test]
    fn every_builtin_subject_describes_its_ops_as_they_are() {
        for result in [
            check_description::<super::interpreter::Interpreter>(),
            check_description::<super::allocator::Allocator>(),
            check_description::<super::wasi_runtime::WasiRuntime>(),
            check_description::<super::reloadable_lib::ReloadableLib>(),
            check_description::<super::dlmalloc::DlmallocSubject>(),
            check_description::<super::counter::Counter>(),
        ] {
            if let Err(problems) = result {
                panic!("{problems}");
            }
        }
    }
}
