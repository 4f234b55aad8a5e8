//! The built-in subjects, each a miniature of a real system with a real bug as a named defect.
//!
//! | module | models | defects |
//! | --- | --- | --- |
//! | `counter` | a tiny object cache, the teaching subject | `leak-on-evict` |

pub mod counter;

use crate::registry::{DynSubject, erase};

/// Every built-in subject, in `sim list` order.
pub fn builtin() -> Vec<Box<dyn DynSubject>> {
    vec![erase::<counter::Counter>()]
}
