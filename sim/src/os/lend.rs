//! Lending the OS to real code's callbacks: `Os::lend` and `with_lent`.
//!
//! A real crate (an allocator such as `dlmalloc` or `talc`) calls its platform layer from inside
//! its own code, where the subject's `&mut Os` is not in scope. `os.lend(code, || crate_call())`
//! makes the OS reachable from this thread for the duration of the call, and names the real code
//! that runs (`Os::host_code`) so that a crash inside it is reported as `touched: … → code`.
//! Inside, the platform layer's callbacks get the OS with `with_lent(|os| …)`.
//!
//! Both restore what they changed when they return and when they unwind, so a panic inside the
//! crate leaves nothing lent, and a lend made inside a callback (real code calling real code)
//! gives back the outer one when it ends. `with_lent` outside a lend, or inside another
//! `with_lent` (which would make two `&mut Os` at once), panics with a message that says so:
//! inside a run that is a `panic` finding naming the op, the report a subject's bug deserves.

use std::cell::Cell;
use std::ptr::null_mut;

use super::{Os, Site};

/// What this thread has lent: the OS of the innermost `Os::lend` (null outside any), and whether
/// a `with_lent` is using it now.
#[derive(Clone, Copy)]
struct Lent {
    os: *mut Os,
    in_use: bool,
}

const NOTHING_LENT: Lent = Lent {
    os: null_mut(),
    in_use: false,
};

thread_local! {
    static LENT: Cell<Lent> = const { Cell::new(NOTHING_LENT) };
}

/// Gives back what a lend or a `with_lent` replaced, when it returns or unwinds.
struct Restore<'os> {
    previous: Lent,
    /// The lending OS and the code name it had before, for `Os::lend`; `None` for `with_lent`.
    host_code: Option<(&'os mut Os, Option<Site>)>,
}

impl Drop for Restore<'_> {
    fn drop(&mut self) {
        // The pointer leaves reach before the lender's `&mut Os` is used again (see `with_lent`).
        LENT.set(self.previous);
        if let Some((os, previous_code)) = self.host_code.as_mut() {
            os.set_host_code(*previous_code);
        }
    }
}

impl Os {
    /// Runs `call`, real code named `code` (`dlmalloc_malloc`), with this OS lent to the callbacks
    /// it makes on this thread (`with_lent`). A crash inside it is reported as `touched: … → code`.
    /// On return or unwind the previous lend and code name come back, so lends nest.
    pub fn lend<R>(&mut self, code: Site, call: impl FnOnce() -> R) -> R {
        let previous_code = self.host_code();
        self.set_host_code(Some(code));
        let mut restore = Restore {
            previous: LENT.get(),
            host_code: Some((self, previous_code)),
        };
        let (os, _) = restore.host_code.as_mut().expect("set just above");
        // Derived from the reference `restore` holds, which is not used again (nor moved) until
        // `restore` drops at the end of this function and takes the pointer out of reach first.
        let os: *mut Os = &mut **os;
        LENT.set(Lent { os, in_use: false });
        call()
    }
}

/// Calls `call` with the OS the innermost `Os::lend` on this thread lent: the way a real crate's
/// callback (an allocator's platform layer) reaches the OS.
///
/// # Panics
///
/// Outside a lend (the callback ran when no op was calling the crate), and inside another
/// `with_lent` on this thread (that would be two `&mut Os` at once). Inside a run, the panic is a
/// `panic` finding that names the op. The panic, and its message, give the caller's place in
/// its source (`#[track_caller]`): the callback that was not wrapped, not this file.
#[track_caller]
pub fn with_lent<R>(call: impl FnOnce(&mut Os) -> R) -> R {
    let previous = LENT.get();
    let caller = std::panic::Location::caller();
    assert!(
        !previous.os.is_null(),
        "sim::os::with_lent called outside Os::lend, at {caller}: real code called back into the OS when no op was running it (wrap the call into the crate in `os.lend(code, || …)`)"
    );
    assert!(
        !previous.in_use,
        "sim::os::with_lent called inside another with_lent on this thread, at {caller}: that would be two `&mut Os` at once (finish with the first before asking again)"
    );
    let _restore = Restore {
        previous,
        host_code: None,
    };
    LENT.set(Lent {
        in_use: true,
        ..previous
    });
    // SAFETY: `previous.os` was derived by `Os::lend` from a `&mut Os` that its `Restore` holds
    // and does not use until it has put back the previous `LENT`, on return or on unwind: so
    // while the pointer is in `LENT`, the lender has the OS borrowed exclusively and nobody else
    // touches it, and the lend's own closure cannot (the `&mut` moved into `lend`). `LENT` is per
    // thread, so the pointer is never used on another thread. Only one `&mut Os` is made from it
    // at a time: `in_use` refuses a second `with_lent` until this one's `_restore` clears it; a
    // lend made inside `call` lends this very reference (reborrowed, not copied) and puts this
    // state back before `call` uses it again. The reference cannot outlive `call` (it is
    // higher-ranked), so it is gone before the lend ends.
    call(unsafe { &mut *previous.os })
}

#[cfg(test)]
mod tests {
    use std::panic::{AssertUnwindSafe, catch_unwind};

    use super::*;
    use crate::subject::panic_message;

    #[test]
    fn a_callback_inside_a_lend_reaches_the_lent_os_and_the_code_is_named() {
        let mut os = Os::for_tests(1);
        let reserved = os.lend("crate_call", || {
            with_lent(|os| {
                assert_eq!(os.host_code(), Some("crate_call"));
                os.reserve(4096, 0, "crate_platform").expect("a page")
            })
        });
        assert_eq!(os.host_code(), None, "the code name ends with the lend");
        assert_eq!(
            os.release(reserved, 4096, "t"),
            Ok(()),
            "the callback's reservation is in the lender's OS"
        );
    }

    #[test]
    fn with_lent_outside_a_lend_panics_saying_so_and_where_it_was_called() {
        let called_at = line!() + 1;
        let payload = catch_unwind(|| with_lent(|_| ())).expect_err("nothing is lent");
        let message = panic_message(payload.as_ref());
        assert!(
            message.contains("with_lent called outside Os::lend"),
            "the message names the mistake: {message}"
        );
        // The call above, not the assertion inside `with_lent`.
        let caller = format!("at {}:{called_at}:", file!());
        assert!(message.contains(&caller), "{caller} in {message}");
    }

    #[test]
    fn with_lent_inside_with_lent_panics_instead_of_making_two_mutable_oses() {
        let mut os = Os::for_tests(1);
        let payload = os
            .lend("crate_call", || {
                catch_unwind(AssertUnwindSafe(|| with_lent(|_| with_lent(|_| ()))))
            })
            .expect_err("the second with_lent is refused");
        assert!(
            panic_message(payload.as_ref()).contains("inside another with_lent"),
            "the message names the mistake"
        );
        // The refused one changed nothing: the first one's state was given back on unwind.
        os.lend("crate_call", || with_lent(|_| ()));
    }

    #[test]
    fn a_panic_inside_a_lend_gives_everything_back() {
        let mut os = Os::for_tests(1);
        let unwound = catch_unwind(AssertUnwindSafe(|| {
            os.lend("crate_call", || with_lent(|_| panic!("the crate panicked")))
        }));
        assert!(unwound.is_err());
        assert_eq!(os.host_code(), None, "the code name is restored on unwind");
        let payload = catch_unwind(|| with_lent(|_| ())).expect_err("nothing lent after unwind");
        assert!(panic_message(payload.as_ref()).contains("outside Os::lend"));
        assert!(
            os.lend("crate_call", || with_lent(|os| os.host_code()))
                .is_some(),
            "a later lend works"
        );
    }

    #[test]
    fn a_lend_inside_a_callback_gives_back_the_outer_lend() {
        let mut os = Os::for_tests(1);
        os.lend("outer_code", || {
            with_lent(|os| {
                os.lend("inner_code", || {
                    with_lent(|os| assert_eq!(os.host_code(), Some("inner_code")))
                });
                assert_eq!(os.host_code(), Some("outer_code"));
            });
            with_lent(|os| assert_eq!(os.host_code(), Some("outer_code")));
        });
        assert_eq!(os.host_code(), None);
        assert!(catch_unwind(|| with_lent(|_| ())).is_err());
    }
}
