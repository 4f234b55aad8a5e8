//! The built-in subjects, each a miniature of a real system with a real bug as a named defect.
//!
//! | module | models | defects |
//! | --- | --- | --- |
//! | `counter` | a tiny object cache, the teaching subject | `leak-on-evict` |
//! | `interpreter` | Miri: fn-pointer ids, program memory, emulated fds with blocking | `fn-ptr-fresh-alloc`, `blocked-read-weak-ref` (and `host-fn-fresh-alloc`) |

pub mod counter;
pub mod interpreter;

use crate::registry::{DynSubject, erase};

/// Every built-in subject, in `sim list` order.
pub fn builtin() -> Vec<Box<dyn DynSubject>> {
    vec![
        erase::<counter::Counter>(),
        erase::<interpreter::Interpreter>(),
    ]
}
